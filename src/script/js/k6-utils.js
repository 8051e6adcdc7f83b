// Volley's built-in copy of the k6-utils helpers (jslib.k6.io/k6-utils),
// so scripts that import them run on machines without internet access.
export function randomIntBetween(min, max) {
  return Math.floor(Math.random() * (max - min + 1) + min);
}

export function randomItem(arrayOfItems) {
  return arrayOfItems[Math.floor(Math.random() * arrayOfItems.length)];
}

export function randomString(length, charset = 'abcdefghijklmnopqrstuvwxyz') {
  let res = '';
  while (length--) res += charset[(Math.random() * charset.length) | 0];
  return res;
}

export function uuidv4() {
  return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, (c) => {
    const r = (Math.random() * 16) | 0;
    const v = c === 'x' ? r : (r & 0x3) | 0x8;
    return v.toString(16);
  });
}

export function findBetween(content, left, right, repeat = false) {
  const extracted = [];
  let doSearch = true;
  let start;
  let end = 0;
  while (doSearch) {
    start = content.indexOf(left);
    if (start === -1) break;
    start += left.length;
    end = content.indexOf(right, start);
    if (end === -1) break;
    extracted.push(content.substring(start, end));
    content = content.substring(end + right.length);
    doSearch = repeat;
  }
  // k6-utils 1.2 and later: null when nothing matched (1.1 gave '').
  if (extracted.length === 0) return repeat ? [] : null;
  return repeat ? extracted : extracted[0];
}

export function normalDistributionStages(maxVus, durationSeconds, numberOfStages = 10) {
  const mean = 0;
  const stdDev = 1;
  const stageDuration = Math.floor(durationSeconds / (numberOfStages + 2));
  const stages = [{ duration: `${stageDuration}s`, target: 0 }];
  for (let i = 1; i <= numberOfStages; i++) {
    const x = -3 + (6 * i) / (numberOfStages + 1);
    const pdf = Math.exp(-0.5 * ((x - mean) / stdDev) ** 2);
    stages.push({ duration: `${stageDuration}s`, target: Math.round(maxVus * pdf) });
  }
  stages.push({ duration: `${stageDuration}s`, target: 0 });
  return stages;
}
