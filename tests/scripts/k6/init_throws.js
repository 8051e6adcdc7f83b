// Covers: an exception in the init context: the run never starts, exit 107.
import http from 'k6/http';

const BASE = __ENV.TARGET_URL;

if (BASE) {
  throw new Error('init fails on purpose');
}

export default function () {
  http.get(BASE);
}
