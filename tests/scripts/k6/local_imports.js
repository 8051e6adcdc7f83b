// Covers: relative imports of local helper modules (named and default
// exports; the helper itself imports ./format.js and k6 modules).
import { check } from 'k6';
import shout, { getPath, checkOk, GREETING } from './lib/helpers.js';
import { joinUrl } from './lib/format.js';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 3 };

export default function () {
  const res = getPath(`${BASE}/`, '/json');
  checkOk(res, 'json');
  check(res, {
    'helper constant': () => GREETING === 'hello from helpers',
    'default export': () => shout('abc') === 'ABC',
    'nested helper': () => joinUrl('http://h/', '/x') === 'http://h/x',
    'url built by helper': (r) => r.url === `${BASE}/json`,
  });
}
