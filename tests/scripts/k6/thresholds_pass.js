// Covers: thresholds that all pass (exit 0): trend stats (p(N), avg, med,
// max), every comparison operator, counters, rates incl. `checks:
// ['rate>0.9']`, tag-filtered sub-metrics ('http_req_duration{name:home}')
// including k6's system tags proto, method and status.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  vus: 2,
  iterations: 6,
  thresholds: {
    http_req_duration: ['p(95)<5000', 'avg<5000', 'med<=5000'],
    'http_req_duration{name:home}': ['p(95)<5000', 'max<5000'],
    http_req_failed: ['rate<0.01'],
    http_reqs: ['count==12', 'count>=12', 'count>11', 'count!=0'],
    iterations: ['count===6'],
    checks: ['rate>0.9'],
    http_req_waiting: ['avg<5000'],
    iteration_duration: ['p(90)<10000'],
    data_received: ['count>0'],
    'http_reqs{proto:HTTP/1.1}': ['count==12'],
    'http_reqs{method:GET,status:200}': ['count==12'],
  },
};

export default function () {
  const home = http.get(BASE, { tags: { name: 'home' } });
  const doc = http.get(`${BASE}/json`);
  check(home, { 'home is 200': (r) => r.status === 200 });
  check(doc, { 'json is 200': (r) => r.status === 200 });
}
