// Covers: the shape of the --summary-export file (used by the structure
// test): a root check, a group with a passing and a failing check, a
// threshold on a metric, on a tag-filtered sub-metric and on `checks`.
// Each VU sleeps long enough (2 x 0.7 s) for k6 to sample the `vus` and
// `vus_max` gauges, so both are in the export.
import http from 'k6/http';
import { check, group, sleep } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  vus: 2,
  iterations: 4,
  thresholds: {
    http_req_duration: ['p(95)<5000'],
    'http_req_duration{name:front}': ['max<5000'],
    checks: ['rate>0.5'],
  },
};

export default function () {
  group('front page', () => {
    const res = http.get(BASE, { tags: { name: 'front' } });
    check(res, {
      'status is 200': (r) => r.status === 200,
      'body is huge': (r) => r.body.length > 1000000,
    });
  });
  check(null, { 'root check': () => true });
  sleep(0.7);
}
