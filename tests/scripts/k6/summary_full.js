// Covers: --summary-mode full, a section per scenario with its groups
// (nested), as k6 prints it; two scenarios with exec functions, checks in
// groups, a threshold on a scenario's sub-metric.
import http from 'k6/http';
import { check, group } from 'k6';
export const options = {
  scenarios: {
    browse: { executor: 'shared-iterations', iterations: 3, vus: 1, exec: 'browse' },
    buy: { executor: 'shared-iterations', iterations: 2, vus: 1, exec: 'buy' },
  },
  thresholds: { 'http_req_duration{scenario:buy}': ['p(95)<500'] },
};
const B = __ENV.TARGET_URL;
export function browse() {
  group('home', () => { check(http.get(`${B}/`), { 'home ok': (r) => r.status === 200 }); });
}
export function buy() {
  group('cart', () => {
    group('pay', () => { check(http.get(`${B}/json`), { 'paid': (r) => r.status === 200 }); });
  });
}
