// Covers: http.setResponseCallback(http.expectedStatuses(...)) as the
// default, a per-request responseCallback, and http_req_failed following
// them (a threshold on it).
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  iterations: 2,
  thresholds: {
    http_req_failed: ['rate==0.2'],
    'http_req_failed{status:500}': ['rate==1'],
  },
};

http.setResponseCallback(http.expectedStatuses(200, { min: 404, max: 404 }));

export default function () {
  check(http.get(`${BASE}/status/404`), { '404 arrives': (r) => r.status === 404 });
  http.get(`${BASE}/status/500`);
  http.get(`${BASE}/status/200`);
  http.get(`${BASE}/status/201`, { responseCallback: http.expectedStatuses(201) });
  http.get(`${BASE}/status/503`, { responseCallback: http.expectedStatuses({ min: 500, max: 599 }) });
}
