// Covers: console.log in init and VU code (strings, numbers, objects), and
// __ENV: a variable given with -e (GREETING=hello) and TARGET_URL.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;
console.log('init: target is', BASE);

export const options = { iterations: 2 };

export default function () {
  console.log(`iteration ${__ITER} on VU ${__VU}`, 42, { a: [1, 2] });
  check(__ENV, {
    'GREETING from -e': (e) => e.GREETING === 'hello',
    'TARGET_URL is http': (e) => e.TARGET_URL.startsWith('http://127.0.0.1:'),
    'unset variable is undefined': (e) => e.VOLLEY_SURELY_UNSET_VARIABLE === undefined,
  });
  http.get(BASE);
}
