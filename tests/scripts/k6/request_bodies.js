// Covers: request bodies: a string body (sent without a Content-Type), a
// plain object (form-encoded, keys sorted, values escaped, Content-Type set),
// a JSON string with an explicit Content-Type header.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 2 };

export default function () {
  let r = http.post(`${BASE}/echo`, 'plain text body');
  check(r, {
    'string body echoed': (r) => r.body === 'plain text body',
    'string body has no content type': (r) => r.headers['Content-Type'] === undefined,
  });

  r = http.post(`${BASE}/echo`, { name: 'Ada Lovelace', b: '2', a: 1 });
  check(r, {
    'object body is form-encoded': (r) => r.body === 'a=1&b=2&name=Ada+Lovelace',
    'form content type': (r) => r.headers['Content-Type'] === 'application/x-www-form-urlencoded',
  });

  r = http.put(`${BASE}/echo`, { q: 'a&b=c/d' });
  check(r, { 'form values are escaped': (r) => r.body === 'q=a%26b%3Dc%2Fd' });

  r = http.post(`${BASE}/echo`, JSON.stringify({ x: 1, y: [true, null] }), {
    headers: { 'Content-Type': 'application/json' },
  });
  check(r, {
    'json body round-trips': (r) => r.json('x') === 1 && r.json('y.0') === true,
    'json content type kept': (r) => r.headers['Content-Type'] === 'application/json',
  });
}
