// Covers: exec.vu.metrics.tags and exec.vu.tags: tags set at run time
// reach later requests, checks and custom metrics (a request's own tag
// wins), read back (with scenario), refuse objects, and can be deleted.
import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
const hits = new Counter('hits');
export const options = {
  iterations: 2,
  thresholds: {
    'http_reqs{step:login}': ['count==2'],
    'http_reqs{step:browse}': ['count==4'],
    'http_reqs{step:own}': ['count==2'],
    'checks{step:browse}': ['rate==1'],
    'hits{step:browse}': ['count==2'],
    'hits{step:login}': ['count==0'],
  },
};
export default function () {
  exec.vu.metrics.tags.step = 'login';
  http.get(`${__ENV.TARGET_URL}/`);
  exec.vu.tags['step'] = 'browse';
  http.get(`${__ENV.TARGET_URL}/json`);
  http.get(`${__ENV.TARGET_URL}/`, { tags: { step: 'own' } });
  http.get(`${__ENV.TARGET_URL}/headers`);
  check(null, { 'tags read back': () => exec.vu.metrics.tags.step === 'browse' && exec.vu.tags.scenario === 'default' });
  hits.add(1);
  let refused = false;
  try { exec.vu.metrics.tags.bad = {}; } catch (e) { refused = e instanceof TypeError; }
  check(refused, { 'an object is refused': (x) => x });
  delete exec.vu.metrics.tags.step;
  check(null, { 'deleted': () => exec.vu.metrics.tags.step === undefined });
}
