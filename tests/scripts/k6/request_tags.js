// Covers: params.tags including `name`; thresholds on tag-filtered
// sub-metrics of http_req_duration and http_reqs (custom tags, `name`,
// the built-in `method` and `status` tags, two tags at once).
import http from 'k6/http';

const BASE = __ENV.TARGET_URL;

export const options = {
  iterations: 3,
  thresholds: {
    'http_req_duration{name:home}': ['p(95)<5000'],
    'http_req_duration{name:home,status:200}': ['max<5000'],
    'http_reqs{name:json}': ['count==3'],
    'http_reqs{kind:write}': ['count==6'],
    'http_reqs{method:POST}': ['count==6'],
    'http_reqs{name:item}': ['count==3'],
    'http_reqs{status:201}': ['count==3'],
  },
};

export default function () {
  http.get(`${BASE}/`, { tags: { name: 'home' } });
  http.get(`${BASE}/json`, { tags: { name: 'json' } });
  http.post(`${BASE}/echo`, 'one', { tags: { kind: 'write' } });
  http.post(`${BASE}/status/201`, 'two', { tags: { kind: 'write' } });
  http.get(`${BASE}/bytes/${__ITER + 1}`, { tags: { name: 'item' } });
}
