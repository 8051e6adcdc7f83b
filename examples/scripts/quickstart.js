// A k6 script as k6 users write them: Volley runs it unmodified.
//   volley target &
//   volley run examples/scripts/quickstart.js
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { Trend } from 'k6/metrics';

const BASE = __ENV.BASE || 'http://127.0.0.1:8080';
const jsonTime = new Trend('json_time', true);

export const options = {
  stages: [
    { duration: '5s', target: 20 },
    { duration: '10s', target: 20 },
    { duration: '5s', target: 0 },
  ],
  thresholds: {
    http_req_duration: ['p(95)<200'],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    json_time: ['p(99)<300'],
  },
};

export function setup() {
  // Runs once before the VUs start; what it returns reaches every iteration.
  const res = http.get(`${BASE}/json`);
  return { token: res.json('token') };
}

export default function (data) {
  group('api', () => {
    const res = http.get(`${BASE}/json`, {
      headers: { Authorization: `Bearer ${data.token}` },
      tags: { name: 'json' },
    });
    check(res, {
      'status is 200': (r) => r.status === 200,
      'has a name': (r) => r.json('name') === 'volley',
    });
    jsonTime.add(res.timings.duration);
  });
  http.post(`${BASE}/echo`, JSON.stringify({ vu: __VU, iter: __ITER }), {
    headers: { 'Content-Type': 'application/json' },
  });
  sleep(0.5);
}
