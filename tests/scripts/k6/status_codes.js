// Covers: /status/CODE over success, client and server error codes (any
// method); Response.status and status_text ("404 Not Found").
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 2 };

const CODES = {
  200: '200 OK',
  201: '201 Created',
  204: '204 No Content',
  400: '400 Bad Request',
  404: '404 Not Found',
  418: "418 I'm a teapot",
  500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export default function () {
  for (const [code, text] of Object.entries(CODES)) {
    const res = http.post(`${BASE}/status/${code}`, 'ignored');
    check(res, {
      [`status ${code}`]: (r) => r.status === Number(code),
      [`status_text ${code}`]: (r) => r.status_text === text,
    });
  }
  check(http.get(`${BASE}/no/such/route`), { 'unknown route is 404': (r) => r.status === 404 });
}
