// Covers: http.asyncRequest awaited alone, several awaited together with
// Promise.all, a POST body, and a request that fails resolving (not
// rejecting) with its error, as k6 does.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  iterations: 2,
  thresholds: { checks: ['rate==1'] },
};

export default async function () {
  const one = await http.asyncRequest('GET', `${BASE}/status/201`);
  check(one, { 'awaited alone': (r) => r.status === 201 });
  const [a, b] = await Promise.all([
    http.asyncRequest('GET', `${BASE}/delay/50`),
    http.asyncRequest('GET', `${BASE}/status/404`),
  ]);
  check(a, { 'together (first)': (r) => r.status === 200 });
  check(b, { 'together (second)': (r) => r.status === 404 });
  const c = await http.asyncRequest('POST', `${BASE}/echo`, 'hi', {
    headers: { 'Content-Type': 'text/plain' },
  });
  check(c, { 'a POST body': (r) => r.status === 200 && r.body === 'hi' });
  const bad = await http.asyncRequest('GET', 'not a url');
  check(bad, { 'a failed request resolves with its error': (r) => r.status === 0 && r.error_code !== 0 });
}
