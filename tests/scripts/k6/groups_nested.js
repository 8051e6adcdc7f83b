// Covers: group (nested three deep), the same check name at root and in a
// group (two separate entries), a check that always fails, group's return
// value, an empty group.
import http from 'k6/http';
import { check, group } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 3 };

export default function () {
  group('home', () => {
    const r = http.get(`${BASE}/`);
    check(r, { 'status is 200': (r) => r.status === 200 });
    group('api', () => {
      const j = http.get(`${BASE}/json`);
      check(j, { 'has id': (j) => j.json('id') === 42 });
      group('deep', () => {
        check(j, {
          'ok flag': (j) => j.json('ok') === true,
          'never true': () => false,
        });
      });
    });
  });
  const v = group('returns value', () => 7);
  check(v, { 'group returns callback value': (v) => v === 7 });
  check(http.get(`${BASE}/status/200`), { 'status is 200': (r) => r.status === 200 });
  group('empty', () => {});
}
