// Covers: params.headers on requests; /headers echoes the request headers
// back as JSON with lower-case names.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { vus: 2, iterations: 4 };

export default function () {
  const res = http.get(`${BASE}/headers`, {
    headers: { 'X-Custom': 'value 1', Accept: 'application/json', 'x-lower': 'low' },
  });
  check(res, {
    'custom header sent': (r) => r.json('x-custom') === 'value 1',
    'accept header sent': (r) => r.json('accept') === 'application/json',
    'lower-case name sent': (r) => r.json('x-lower') === 'low',
    'a user agent is sent': (r) => typeof r.json('user-agent') === 'string',
    'host header sent': (r) => BASE.endsWith(r.json('host')),
  });
}
