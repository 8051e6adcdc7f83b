// Covers: sleep with fractional seconds and sleep(0); Date.now() in VU code.
import http from 'k6/http';
import { check, sleep } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 3 };

export default function () {
  const t0 = Date.now();
  sleep(0.2);
  sleep(0);
  const waited = Date.now() - t0;
  check(waited, {
    'sleep(0.2) waits about 200 ms': (w) => w >= 190 && w < 1500,
  });
  http.get(`${BASE}/delay/10`);
}
