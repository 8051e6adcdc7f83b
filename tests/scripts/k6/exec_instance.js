// Covers: k6/execution's instance counts: VUs initialised and active, and
// the iterations ended so far, while the VUs run.
import exec from 'k6/execution';
import { check, sleep } from 'k6';

export const options = {
  scenarios: { s: { executor: 'shared-iterations', vus: 3, iterations: 9 } },
  thresholds: { checks: ['rate==1'] },
};

export default function () {
  sleep(0.05);
  check(exec.instance, {
    'vusInitialized is every VU': (x) => x.vusInitialized === 3,
    'vusActive counts this one': (x) => x.vusActive >= 1 && x.vusActive <= 3,
    'iterationsCompleted so far': (x) => x.iterationsCompleted <= 8,
    'nothing interrupted': (x) => x.iterationsInterrupted === 0,
  });
}
