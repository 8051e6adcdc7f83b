// Covers: k6/timers and the global timers: setTimeout with arguments,
// clearTimeout, setInterval with clearInterval, a request made from a
// timer callback, a promise resolved by a timer and awaited by an async
// default function; the iteration ends only when no timer is left.
import http from 'k6/http';
import { check } from 'k6';
import { setTimeout as later, clearTimeout as cancel } from 'k6/timers';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 2 };

export default async function () {
  const t0 = Date.now();
  const order = [];
  later((tag) => order.push(tag), 30, 'late');
  setTimeout(() => order.push('early'), 10);
  const never = later(() => order.push('cancelled'), 5);
  cancel(never);
  let ticks = 0;
  const id = setInterval(() => {
    ticks += 1;
    if (ticks === 3) clearInterval(id);
  }, 5);
  setTimeout(() => {
    check(http.get(`${BASE}/status/202`), { 'request from a timer': (r) => r.status === 202 });
  }, 15);
  await new Promise((resolve) => setTimeout(resolve, 40));
  check(order, {
    'timers fire in due order': (o) => o.join(',') === 'early,late',
    'interval ran three times': () => ticks === 3,
    'the awaited timer waited': () => Date.now() - t0 >= 40,
  });
}
