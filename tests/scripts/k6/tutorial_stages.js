// Covers: the k6 tutorial's ramping test: `stages` shortcut, a check on the
// status, and an `Authorization: Bearer ${__ENV.TOKEN}` header (the test
// passes -e TOKEN=...); /headers shows what was sent.
import http from 'k6/http';
import { check, sleep } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  stages: [
    { duration: '500ms', target: 5 },
    { duration: '1s', target: 3 },
    { duration: '500ms', target: 0 },
  ],
};

export default function () {
  const params = {
    headers: { Authorization: `Bearer ${__ENV.TOKEN}` },
  };
  const res = http.get(`${BASE}/headers`, params);
  check(res, {
    'status was 200': (r) => r.status == 200,
    'bearer token sent': (r) => r.json('authorization') === `Bearer ${__ENV.TOKEN}`,
  });
  sleep(0.1);
}
