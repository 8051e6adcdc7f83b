// Covers: the `hosts` option (a name answered with an IP instead of DNS,
// and a name:port sent to another ip:port), and `maxRedirects` from the
// options (1 here: a chain of 2 stops at its first hop).
import http from 'k6/http';
import { check } from 'k6';

const PORT = __ENV.TARGET_URL.split(':').pop();

export const options = {
  iterations: 2,
  maxRedirects: 1,
  hosts: {
    'api.volley.test': '127.0.0.1',
    'other.volley.test:80': `127.0.0.1:${PORT}`,
  },
};

export default function () {
  check(http.get(`http://api.volley.test:${PORT}/status/203`), {
    'name answered from hosts': (r) => r.status === 203,
  });
  check(http.get('http://other.volley.test/status/204'), {
    'name:port sent to ip:port': (r) => r.status === 204,
  });
  check(http.get(`http://api.volley.test:${PORT}/redirect/2`), {
    'maxRedirects from the options': (r) => r.status === 302,
  });
}
