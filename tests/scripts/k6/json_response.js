// Covers: Response.json() and json('a.b') selectors (object keys, array
// indexes, nested paths, booleans), on the target's /json document.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 3 };

export default function () {
  const res = http.get(`${BASE}/json`);
  check(res, {
    'content type is json': (r) => r.headers['Content-Type'] === 'application/json',
    'json() parses the whole body': (r) => r.json().id === 42,
    "json('name')": (r) => r.json('name') === 'volley',
    "json('items.1.name')": (r) => r.json('items.1.name') === 'beta',
    "json('items.0.id')": (r) => r.json('items.0.id') === 1,
    "json('ok')": (r) => r.json('ok') === true,
  });
  const again = http.get(`${BASE}/json`);
  check(again, { 'token differs per request': (r) => r.json('token') !== res.json('token') });
}
