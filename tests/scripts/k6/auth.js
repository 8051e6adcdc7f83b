// Covers: Basic auth from the URL's credentials (with and without
// `auth: 'basic'`), Digest auth (`auth: 'digest'`: a 401 challenge that
// counts as expected, then the answered request), wrong Digest
// credentials staying 401 (its challenge expected, the retry not: 2 of
// 10 requests fail).
import http from 'k6/http';
import { check } from 'k6';

const HOST = __ENV.TARGET_URL.replace('http://', '');

export const options = {
  iterations: 2,
  thresholds: { http_req_failed: ['rate==0.2'] },
};

export default function () {
  const basic = http.get(`http://alice:s3cret@${HOST}/headers`, { auth: 'basic' });
  check(basic, {
    'basic credentials sent': (r) => r.json().authorization === 'Basic YWxpY2U6czNjcmV0',
  });
  const digest = http.get(`http://bob:pa55@${HOST}/digest-auth/auth/bob/pa55`, { auth: 'digest' });
  check(digest, {
    'digest accepted': (r) => r.status === 200 && r.json().authenticated === true,
  });
  const wrong = http.get(`http://bob:nope@${HOST}/digest-auth/auth/bob/pa55`, { auth: 'digest' });
  check(wrong, { 'wrong digest password is 401': (r) => r.status === 401 });
}
