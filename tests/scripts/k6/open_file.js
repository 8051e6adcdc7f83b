// Covers: open() of a relative text file (UTF-8) in the init context, used
// as a request body; open() of a JSON file parsed in init.
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;
const payload = open('./data/payload.txt');
const users = JSON.parse(open('./data/users.json'));

export const options = { iterations: 3 };

export default function () {
  check(payload, {
    'file has three lines': (p) => p.split('\n').length === 4,
    'utf-8 decoded': (p) => p.includes('ünïcode'),
    'json file parsed': () => users.length === 3 && users[0].name === 'ada',
  });
  const res = http.post(`${BASE}/echo`, payload, { headers: { 'Content-Type': 'text/plain' } });
  check(res, { 'file content echoed': (r) => r.body === payload });
}
