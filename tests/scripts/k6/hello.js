// Covers: the smallest script: default function, the `iterations` shortcut
// (1 VU), http.get of the base URL, check on status and exact body.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 5 };

export default function () {
  const res = http.get(BASE);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'body is the greeting': (r) => r.body === 'Volley target\n',
  });
}
