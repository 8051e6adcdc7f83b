// Covers: exec.test.abort() from VU code: the run stops with exit 108, the
// interrupted iteration is not counted, teardown still runs.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 10 };

export default function () {
  const res = http.get(BASE);
  check(res, { 'status is 200': (r) => r.status === 200 });
  if (exec.scenario.iterationInTest === 3) {
    exec.test.abort('enough after four requests');
  }
  check(res, { 'not aborted yet': () => true });
}

export function teardown() {
  console.log('teardown still runs after abort');
}
