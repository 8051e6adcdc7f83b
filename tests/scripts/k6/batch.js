// Covers: http.batch in its three entry forms (URL, [method, url, body,
// params], {method, url, body, params}) and as an object; responses in the
// order asked; redirects followed inside a batch; requests sent in
// parallel (two 300 ms delays end before 590 ms; one after the other they take 600).
import http from 'k6/http';
import { check } from 'k6';
export const options = { iterations: 2, vus: 1 };
export default function () {
  const base = __ENV.TARGET_URL;
  const t0 = Date.now();
  const rs = http.batch([
    `${base}/delay/300`,
    ['GET', `${base}/delay/300`, null, { tags: { name: 'tuple' } }],
    { method: 'POST', url: `${base}/echo`, body: 'hello', params: { headers: { 'Content-Type': 'text/plain' } } },
    { url: `${base}/redirect/2` },
  ]);
  const took = Date.now() - t0;
  check(rs, {
    'four responses in order': (r) => r.length === 4 && r[2].body === 'hello',
    'redirect followed in a batch': (r) => r[3].status === 200 && r[3].url === `${base}/redirect/0`,
    'in parallel': () => took < 590,
  });
  const named = http.batch({ a: `${base}/status/201`, b: `${base}/status/202` });
  check(named, { 'object form': (r) => r.a.status === 201 && r.b.status === 202 });
}
