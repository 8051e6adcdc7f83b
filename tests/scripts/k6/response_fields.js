// Covers: Response fields: url, status_text, headers, body length of
// /bytes/N, timings.duration (at least the /delay), error '' and
// error_code 0 on success, remote_ip/remote_port of the target, no TLS
// fields over plain http.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 2 };

export default function () {
  const res = http.get(`${BASE}/bytes/1024`);
  check(res, {
    'url is the requested url': (r) => r.url === `${BASE}/bytes/1024`,
    'status_text is 200 OK': (r) => r.status_text === '200 OK',
    'body has 1024 chars': (r) => r.body.length === 1024,
    'octet-stream content type': (r) => r.headers['Content-Type'] === 'application/octet-stream',
    'server header': (r) => r.headers['Server'] === 'volley-target',
    'no error': (r) => r.error === '' && r.error_code === 0,
    'duration is a number': (r) => typeof r.timings.duration === 'number' && r.timings.duration >= 0,
    'remote address is the target': (r) =>
      r.remote_ip === '127.0.0.1' && `http://${r.remote_ip}:${r.remote_port}` === BASE,
    'no tls over http': (r) => r.tls_version === '' && r.tls_cipher_suite === '',
  });
  const slow = http.get(`${BASE}/delay/50`);
  check(slow, {
    'delayed body': (r) => r.body === 'delayed\n',
    'duration covers the delay': (r) => r.timings.duration >= 49,
  });
}
