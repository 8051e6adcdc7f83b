// Covers: k6/data SharedArray built from a function in init, reading
// JSON.parse(open('./data/users.json')); length, index reads, for...of; a
// user picked by exec.scenario.iterationInTest posted as JSON to /echo.
import http from 'k6/http';
import { check } from 'k6';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';

const BASE = __ENV.TARGET_URL;

const users = new SharedArray('users', function () {
  return JSON.parse(open('./data/users.json'));
});

export const options = { vus: 2, iterations: 6 };

export default function () {
  const user = users[exec.scenario.iterationInTest % users.length];
  let names = 0;
  for (const u of users) {
    names += u.name.length > 0 ? 1 : 0;
  }
  check(users, {
    'three users': (a) => a.length === 3,
    'for...of visits all': () => names === 3,
    'nested arrays survive': (a) => a[1].roles[1] === 'ops',
  });
  const res = http.post(`${BASE}/echo`, JSON.stringify(user), {
    headers: { 'Content-Type': 'application/json' },
  });
  check(res, { 'echoes the user': (r) => r.json('name') === user.name && r.json('id') === user.id });
}
