// Covers: thresholds that FAIL on purpose (exit 99): http_req_failed over
// 500 responses, and a sub-metric 'http_req_duration{name:slow}' over a
// 60 ms delay; alongside thresholds that pass (checks, a counter).
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  iterations: 4,
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{name:slow}': ['p(95)<20', 'max<5000'],
    checks: ['rate>0.9'],
    http_reqs: ['count==8'],
  },
};

export default function () {
  const broken = http.get(`${BASE}/status/500`);
  const slow = http.get(`${BASE}/delay/60`, { tags: { name: 'slow' } });
  check(broken, { 'broken is 500': (r) => r.status === 500 });
  check(slow, { 'slow is 200': (r) => r.status === 200 });
}
