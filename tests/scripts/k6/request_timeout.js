// Covers: params.timeout (string and number forms); a timed-out request has
// status 0, a non-empty error and error_code 1050; one that beats its
// timeout succeeds.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 2 };

export default function () {
  const late = http.get(`${BASE}/delay/1500`, { timeout: '200ms' });
  check(late, {
    'timed out: status 0': (r) => r.status === 0,
    'timed out: error set': (r) => typeof r.error === 'string' && r.error.length > 0,
    'timed out: error_code 1050': (r) => r.error_code === 1050,
  });
  const quick = http.get(`${BASE}/delay/10`, { timeout: 5000 });
  check(quick, { 'in time: status 200': (r) => r.status === 200 && r.error_code === 0 });
}
