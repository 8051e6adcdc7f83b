// Covers: the k6 tutorial's first load test, unchanged but for the length:
// `vus: 200` with a `duration` ('2s' instead of '3m'), http.get + sleep.
import http from 'k6/http';
import { sleep } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  vus: 200,
  duration: '2s',
};

export default function () {
  http.get(BASE);
  sleep(0.1);
}
