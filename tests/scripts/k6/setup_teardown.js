// Covers: setup() making a request and returning data; each VU gets its
// own copy of the data (its changes persist across its iterations);
// teardown(data) gets the original data; checks and requests in setup and
// teardown.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { vus: 2, iterations: 4 };

export function setup() {
  const res = http.get(`${BASE}/json`);
  check(res, { 'setup got json': (r) => r.status === 200 });
  return { token: res.json('token'), id: res.json('id'), items: res.json('items') };
}

export default function (data) {
  const res = http.get(`${BASE}/headers`, {
    headers: { Authorization: `Bearer ${data.token}` },
  });
  check(res, {
    'token from setup is sent': (r) => r.json('authorization') === `Bearer ${data.token}`,
    'setup data is intact': () => data.id === 42 && data.items[1].name === 'beta',
  });
  if (data.mine === undefined) {
    data.mine = __VU;
  }
  check(data, { 'VU copy keeps its own changes': (d) => d.mine === __VU });
}

export function teardown(data) {
  http.post(`${BASE}/echo`, 'teardown');
  check(data, {
    'teardown sees setup data': (d) => d.id === 42,
    'teardown gets the original data': (d) => d.mine === undefined,
  });
}
