// Covers: the k6-utils jslib imported by URL (randomIntBetween, randomItem,
// randomString with and without a charset, uuidv4, findBetween single,
// repeated and without a match). k6 fetches this URL from the internet; the
// side-by-side test runs only Volley on it (see tests/js_k6_compat.rs).
import http from 'k6/http';
import { check } from 'k6';
import { randomIntBetween, randomItem, randomString, uuidv4, findBetween } from 'https://jslib.k6.io/k6-utils/1.4.0/index.js';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 5 };

export default function () {
  const n = randomIntBetween(1, 6);
  const res = http.get(`${BASE}/json`);
  check(res, {
    'randomIntBetween in range': () => Number.isInteger(n) && n >= 1 && n <= 6,
    'randomItem picks an element': () => ['a', 'b', 'c'].includes(randomItem(['a', 'b', 'c'])),
    'randomString default charset': () => /^[a-z]{12}$/.test(randomString(12)),
    'randomString custom charset': () => /^[01]{8}$/.test(randomString(8, '01')),
    'uuidv4 shape': () => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuidv4()),
    'findBetween first match': (r) => findBetween(r.body, '"name":"', '"') === 'volley',
    'findBetween repeat': (r) => findBetween(r.body, '"name":"', '"', true).join(',') === 'volley,alpha,beta',
    'findBetween no match is null': (r) => findBetween(r.body, '<', '>') === null,
  });
}
