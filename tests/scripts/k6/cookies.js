// Covers: the VU's cookie jar (Set-Cookie stored on a redirect hop and sent
// on the next, emptied before every iteration), per-request `cookies`
// (plain and `replace`), http.cookieJar() (cookiesForURL, set, delete),
// new http.CookieJar() as `jar`, Response.cookies, noCookiesReset off.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 3 };

export default function () {
  check(http.get(`${BASE}/cookies`), {
    'jar empty at iteration start': (r) => Object.keys(r.json()).length === 0,
  });
  const set = http.get(`${BASE}/cookies/set?sid=abc&theme=dark`);
  check(set, {
    'redirect followed to /cookies': (r) => r.status === 200 && r.url === `${BASE}/cookies`,
    'hop cookies sent': (r) => r.json().sid === 'abc' && r.json().theme === 'dark',
    'final response sets none': (r) => Object.keys(r.cookies).length === 0,
  });
  const own = http.get(`${BASE}/cookies`, {
    cookies: { extra: '1', sid: { value: 'mine', replace: true } },
  });
  check(own, {
    'request cookies sent': (r) => r.json().extra === '1',
    'replace hides the jar cookie': (r) => r.json().sid === 'mine',
  });
  const jar = http.cookieJar();
  check(jar.cookiesForURL(BASE), { 'jar lists sid': (c) => c.sid[0] === 'abc' });
  jar.set(BASE, 'manual', 'x');
  check(http.get(`${BASE}/cookies`), { 'jar.set is sent': (r) => r.json().manual === 'x' });
  jar.delete(BASE, 'manual');
  check(http.get(`${BASE}/cookies`), { 'jar.delete is gone': (r) => r.json().manual === undefined });
  const fresh = new http.CookieJar();
  check(http.get(`${BASE}/cookies`, { jar: fresh }), {
    'a new jar starts empty': (r) => Object.keys(r.json()).length === 0,
  });
  const noFollow = http.get(`${BASE}/cookies/set?q=2`, { redirects: 0 });
  check(noFollow, {
    'Response.cookies': (r) => r.cookies.q[0].value === '2' && r.cookies.q[0].path === '/',
  });
}
