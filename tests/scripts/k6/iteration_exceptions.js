// Covers: exceptions in VU code: `throw new Error` and `fail()` end the
// iteration early but it still counts as complete; the run goes on and
// exits 0. Checks made before the throw are kept.
import http from 'k6/http';
import { check, fail } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = {
  scenarios: {
    throwing: { executor: 'per-vu-iterations', vus: 2, iterations: 4 },
  },
};

export default function () {
  const res = http.get(BASE);
  check(res, { 'status is 200': (r) => r.status === 200 });
  if (__ITER === 1) {
    throw new Error(`boom on iteration ${__ITER} of VU ${__VU}`);
  }
  if (__ITER === 2) {
    fail('fail() on iteration 2');
  }
  check(res, { 'reached the end': () => true });
}
