// Covers: the --summary-export structure of every executor Volley runs
// (`summary_exports_have_the_same_shape`). EXECUTOR picks one; each run
// lasts about 1.5 s, long enough for k6 to sample `vus` and `vus_max`
// once. A check, a threshold on a metric and one on a sub-metric.
import http from 'k6/http';
import { check, sleep } from 'k6';

const BASE = __ENV.TARGET_URL;

const SCENARIOS = {
  'shared-iterations': { executor: 'shared-iterations', vus: 2, iterations: 6 },
  'per-vu-iterations': { executor: 'per-vu-iterations', vus: 2, iterations: 3 },
  'constant-vus': { executor: 'constant-vus', vus: 2, duration: '1500ms' },
  'ramping-vus': {
    executor: 'ramping-vus',
    startVUs: 1,
    stages: [{ duration: '750ms', target: 2 }, { duration: '750ms', target: 2 }],
    gracefulRampDown: '0s',
  },
  'constant-arrival-rate': {
    executor: 'constant-arrival-rate',
    rate: 4,
    timeUnit: '1s',
    duration: '1500ms',
    preAllocatedVUs: 2,
    maxVUs: 4,
  },
  'ramping-arrival-rate': {
    executor: 'ramping-arrival-rate',
    startRate: 2,
    timeUnit: '1s',
    stages: [{ duration: '1500ms', target: 6 }],
    preAllocatedVUs: 2,
    maxVUs: 6,
  },
};

const executor = __ENV.EXECUTOR || 'shared-iterations';
if (!SCENARIOS[executor]) {
  throw new Error(`EXECUTOR=${executor} is not one of ${Object.keys(SCENARIOS).join(', ')}`);
}

export const options = {
  scenarios: { main: SCENARIOS[executor] },
  thresholds: {
    http_req_duration: ['p(95)<5000'],
    'http_req_duration{scenario:main}': ['max<5000'],
    checks: ['rate>0.5'],
  },
};

export default function () {
  const res = http.get(BASE);
  check(res, { 'status is 200': (r) => r.status === 200 });
  // The iteration executors pace themselves; the others run for a duration.
  if (executor.endsWith('iterations')) {
    sleep(0.5);
  } else {
    sleep(0.25);
  }
}
