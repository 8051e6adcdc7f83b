// Covers: k6/execution (vu.idInTest, vu.iterationInScenario,
// scenario.name, scenario.iterationInTest) against __VU and __ITER;
// __ITER is undefined in the init context.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';

const BASE = __ENV.TARGET_URL;
const ITER_IN_INIT = typeof __ITER;

export const options = {
  scenarios: {
    ctx: { executor: 'per-vu-iterations', vus: 2, iterations: 3 },
  },
};

export default function () {
  check(null, {
    '__ITER undefined in init': () => ITER_IN_INIT === 'undefined',
    'scenario name': () => exec.scenario.name === 'ctx',
    '__VU equals vu.idInTest': () => __VU === exec.vu.idInTest,
    'vu id is 1 or 2': () => exec.vu.idInTest === 1 || exec.vu.idInTest === 2,
    '__ITER equals vu.iterationInScenario': () => __ITER === exec.vu.iterationInScenario,
    'iterationInScenario below 3': () => exec.vu.iterationInScenario < 3,
    'iterationInTest below 6': () => exec.scenario.iterationInTest >= 0 && exec.scenario.iterationInTest < 6,
  });
  const res = http.get(`${BASE}/headers`, { headers: { 'X-Vu': `${exec.vu.idInTest}` } });
  check(res, { 'vu id sent as header': (r) => r.json('x-vu') === String(__VU) });
}
