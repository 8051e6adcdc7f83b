// Covers: the four time-bounded executors, each at most 1 s and running
// concurrently: constant-vus, ramping-vus, constant-arrival-rate,
// ramping-arrival-rate. Counts vary run to run; checks always pass.
import http from 'k6/http';
import { check, sleep } from 'k6';
import exec from 'k6/execution';

const BASE = __ENV.TARGET_URL;

export const options = {
  scenarios: {
    constant: { executor: 'constant-vus', vus: 2, duration: '1s', exec: 'hit' },
    ramping: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: [
        { duration: '500ms', target: 2 },
        { duration: '500ms', target: 0 },
      ],
      exec: 'hit',
    },
    arrival: {
      executor: 'constant-arrival-rate',
      rate: 10,
      timeUnit: '1s',
      duration: '1s',
      preAllocatedVUs: 2,
      exec: 'hit',
    },
    rampArrival: {
      executor: 'ramping-arrival-rate',
      startRate: 5,
      timeUnit: '1s',
      preAllocatedVUs: 2,
      maxVUs: 4,
      stages: [{ duration: '1s', target: 10 }],
      exec: 'hit',
    },
  },
};

const NAMES = ['constant', 'ramping', 'arrival', 'rampArrival'];

export function hit() {
  const res = http.get(`${BASE}/`);
  check(res, {
    'status is 200': (r) => r.status === 200,
    'known scenario': () => NAMES.includes(exec.scenario.name),
  });
  sleep(0.05);
}
