// Covers: redirects followed (each hop its own request in http_reqs), the
// default limit of 10 returning the last 302, per-request `redirects`, a
// POST turned into GET by 302, Response.url after redirects, and a `name`
// tag shared by every hop.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  iterations: 2,
  thresholds: { 'http_reqs{name:chain}': ['count==8'] },
};

export default function () {
  check(http.get(`${BASE}/redirect/3`), {
    'chain of 3 ends at 200': (r) => r.status === 200 && r.url === `${BASE}/redirect/0`,
    'final body': (r) => r.body === 'redirected\n',
  });
  check(http.get(`${BASE}/redirect/3`, { redirects: 1 }), {
    'limit 1 returns the 302': (r) => r.status === 302 && r.url === `${BASE}/redirect/2`,
  });
  check(http.get(`${BASE}/redirect/11`), {
    'default limit of 10 returns the 302': (r) => r.status === 302 && r.url === `${BASE}/redirect/1`,
  });
  check(http.post(`${BASE}/cookies/set?p=1`, 'payload'), {
    'POST after 302 arrives as GET at /cookies': (r) => r.status === 200 && r.json().p === '1',
  });
  check(http.get(`${BASE}/redirect/3`, { tags: { name: 'chain' } }), {
    'named chain': (r) => r.status === 200,
  });
}
