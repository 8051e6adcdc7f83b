// k6: check, group, sleep, fail, randomSeed (k6's names and semantics).
const v = globalThis.__volley;

export function check(val, sets, tags) {
  let all = true;
  for (const name of Object.keys(sets)) {
    const c = sets[name];
    const ok = typeof c === 'function' ? !!c(val) : !!c;
    v.check(name, ok, tags === undefined ? null : tags);
    if (!ok) all = false;
  }
  return all;
}

export function group(name, fn) {
  if (typeof fn !== 'function') throw new TypeError('group() needs a function as its second argument');
  v.groupStart(String(name));
  try {
    return fn();
  } finally {
    v.groupEnd();
  }
}

export function sleep(seconds) {
  v.sleep(Number(seconds));
}

export function fail(message) {
  throw new Error(message === undefined ? 'fail' : String(message));
}

// Math.random is the realm's: once a VU seeds its stream, Math.random
// reads the running VU's (the others keep the built-in one).
let seeded = false;
export function randomSeed(seed) {
  let s = Number(seed) >>> 0;
  v.vu().random = function () {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  if (!seeded) {
    seeded = true;
    const builtin = Math.random;
    Math.random = function random() {
      const r = v.vu().random;
      return r === undefined ? builtin() : r();
    };
  }
}

export default { check, group, sleep, fail, randomSeed };
