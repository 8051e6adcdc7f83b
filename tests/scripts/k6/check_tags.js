// Covers: check with the tags argument, and thresholds on tag-filtered
// `checks` sub-metrics; one tagged check fails on every other iteration.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  iterations: 4,
  thresholds: {
    'checks{kind:api}': ['rate==1'],
    'checks{kind:flaky}': ['rate>=0.5', 'rate<1'],
    checks: ['rate>0.5'],
  },
};

export default function () {
  const res = http.get(`${BASE}/json`);
  check(res, { 'api answers 200': (r) => r.status === 200 }, { kind: 'api' });
  check(res, { 'flaky on odd iterations': () => __ITER % 2 === 0 }, { kind: 'flaky' });
  check(res, { 'untagged': (r) => r.json('ok') === true });
}
