// Covers: `vus` + `iterations` shortcut (shared-iterations over 3 VUs),
// res.json() on the /json document.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { vus: 3, iterations: 9 };

export default function () {
  const res = http.get(`${BASE}/json`);
  const doc = res.json();
  check(doc, {
    'name is volley': (d) => d.name === 'volley',
    'two items': (d) => d.items.length === 2,
    'token looks right': (d) => /^tok-\d+$/.test(d.token),
  });
}
