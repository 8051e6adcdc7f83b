// Covers: k6/metrics Counter, Gauge, Rate and Trend (time and plain),
// samples with tags, sub-metric thresholds on custom metrics, a metric with
// a threshold but no samples, custom metrics added in setup and in a group.
import http from 'k6/http';
import { group } from 'k6';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const BASE = __ENV.TARGET_URL;

const calls = new Counter('calls');
const lastLength = new Gauge('last_length');
const evenIter = new Rate('even_iteration');
const callTime = new Trend('call_time', true);
const score = new Trend('score');
const neverAdded = new Counter('never_added');

export const options = {
  // Per VU, so which iterations are even does not depend on scheduling.
  scenarios: { main: { executor: 'per-vu-iterations', vus: 2, iterations: 3 } },
  thresholds: {
    calls: ['count==7'],
    'calls{kind:grouped}': ['count==6'],
    even_iteration: ['rate>=0'],
    'even_iteration{parity:even}': ['rate==1'],
    call_time: ['p(95)<5000'],
    score: ['max<100'],
    never_added: ['count==0'],
  },
};

export function setup() {
  calls.add(1, { kind: 'setup' });
}

export default function () {
  const res = http.get(`${BASE}/bytes/16`);
  group('g', () => {
    calls.add(1, { kind: 'grouped' });
  });
  lastLength.add(res.body.length);
  const even = __ITER % 2 === 0;
  evenIter.add(even, { parity: even ? 'even' : 'odd' });
  callTime.add(res.timings.duration);
  score.add(10 + __ITER);
}
