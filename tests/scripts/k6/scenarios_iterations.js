// Covers: several scenarios with iteration-bounded executors
// (shared-iterations, per-vu-iterations) running concurrently, scenario
// `exec` functions and the default function, exec.scenario.name and
// iterationInTest per scenario, thresholds on `scenario`-tagged sub-metrics.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

const BASE = __ENV.TARGET_URL;

export const options = {
  scenarios: {
    shared: { executor: 'shared-iterations', vus: 2, iterations: 5, exec: 'sharedFn', maxDuration: '20s' },
    pervu: { executor: 'per-vu-iterations', vus: 2, iterations: 2, exec: 'perVuFn' },
    plain: { executor: 'shared-iterations', iterations: 2 },
  },
  thresholds: {
    'http_reqs{scenario:shared}': ['count==5'],
    'iterations{scenario:pervu}': ['count==4'],
    'iterations{scenario:plain}': ['count==2'],
  },
};

export function sharedFn() {
  const res = http.get(`${BASE}/json`);
  check(res, {
    'shared runs sharedFn': () => exec.scenario.name === 'shared',
    'shared iterationInTest below 5': () => exec.scenario.iterationInTest < 5,
  });
}

export function perVuFn() {
  http.get(`${BASE}/`);
  check(null, {
    'pervu runs perVuFn': () => exec.scenario.name === 'pervu',
    'pervu iterationInScenario below 2': () => exec.vu.iterationInScenario < 2,
  });
}

export default function () {
  http.get(`${BASE}/status/204`);
  check(null, { 'plain runs default': () => exec.scenario.name === 'plain' });
}
