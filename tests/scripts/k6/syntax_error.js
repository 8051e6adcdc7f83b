// Covers: a script that does not parse (a missing parenthesis): exit 107.
import http from 'k6/http';

const BASE = __ENV.TARGET_URL;

export default function () {
  http.get(BASE;
}
