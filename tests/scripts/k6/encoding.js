// Covers: k6/encoding b64encode/b64decode, std and url alphabets, string
// output with 's', ArrayBuffer output by default, UTF-8 input, a round trip
// through /echo.
import http from 'k6/http';
import { check } from 'k6';
import encoding from 'k6/encoding';
import { b64encode, b64decode } from 'k6/encoding';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 2 };

export default function () {
  check(null, {
    'std encode': () => b64encode('hello, world') === 'aGVsbG8sIHdvcmxk',
    'std encode with +': () => b64encode('??>>') === 'Pz8+Pg==',
    'url encode with -': () => b64encode('??>>', 'url') === 'Pz8-Pg==',
    'utf-8 encode': () => b64encode('héllo') === 'aMOpbGxv',
    'std decode to string': () => b64decode('aGVsbG8sIHdvcmxk', 'std', 's') === 'hello, world',
    'url decode to string': () => b64decode('Pz8-Pg==', 'url', 's') === '??>>',
    'utf-8 decode': () => b64decode('aMOpbGxv', 'std', 's') === 'héllo',
    'decode returns an ArrayBuffer': () => {
      const buf = b64decode('aGVsbG8sIHdvcmxk');
      return buf instanceof ArrayBuffer && buf.byteLength === 12;
    },
    'default export works too': () => encoding.b64encode('hi') === 'aGk=',
  });
  const payload = `vu ${__VU} iteration ${__ITER}`;
  const res = http.post(`${BASE}/echo`, b64encode(payload));
  check(res, { 'round trip through /echo': (r) => b64decode(r.body, 'std', 's') === payload });
}
