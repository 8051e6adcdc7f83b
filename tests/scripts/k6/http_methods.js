// Covers: every k6/http verb helper (get, post, put, patch, del, head,
// options) and http.request with an explicit method; /echo reports the
// method in `X-Echo-Method` (canonical header-name casing in res.headers).
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;
const URL = `${BASE}/echo`;

export const options = { iterations: 2 };

const method = (r) => r.headers['X-Echo-Method'];

export default function () {
  check(http.get(URL), { 'get sends GET': (r) => method(r) === 'GET' });
  check(http.post(URL, 'p'), { 'post sends POST with body': (r) => method(r) === 'POST' && r.body === 'p' });
  check(http.put(URL, 'u'), { 'put sends PUT with body': (r) => method(r) === 'PUT' && r.body === 'u' });
  check(http.patch(URL, 'x'), { 'patch sends PATCH with body': (r) => method(r) === 'PATCH' && r.body === 'x' });
  check(http.del(URL), { 'del sends DELETE': (r) => method(r) === 'DELETE' });
  check(http.head(URL), {
    'head sends HEAD': (r) => method(r) === 'HEAD',
    'head has no body': (r) => !r.body,
  });
  check(http.options(URL), { 'options sends OPTIONS': (r) => method(r) === 'OPTIONS' });
  check(http.request('GET', URL), { 'request GET': (r) => method(r) === 'GET' });
  check(http.request('POST', URL, 'rq'), { 'request POST with body': (r) => method(r) === 'POST' && r.body === 'rq' });
  check(http.request('DELETE', `${BASE}/status/204`), { 'request DELETE 204': (r) => r.status === 204 });
}
