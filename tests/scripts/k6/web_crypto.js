// Covers: the global WebCrypto randomness k6 has: crypto.randomUUID()
// (version 4, distinct) and crypto.getRandomValues() (in place, integer
// arrays only, at most 64 KiB).
import { check } from 'k6';
export const options = { iterations: 1, thresholds: { checks: ['rate==1'] } };
export default function () {
  const ids = new Set();
  for (let i = 0; i < 100; i++) ids.add(crypto.randomUUID());
  check(ids, {
    'randomUUID: distinct v4 UUIDs': (s) => s.size === 100 && [...s].every((u) => /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u)),
  });
  const a = new Uint32Array(8);
  const same = crypto.getRandomValues(a);
  check(a, {
    'getRandomValues fills in place': (x) => same === x && x.some((n) => n !== 0),
    'getRandomValues refuses floats': () => { try { crypto.getRandomValues(new Float64Array(2)); return false; } catch (e) { return true; } },
    'getRandomValues refuses more than 64 KiB': () => { try { crypto.getRandomValues(new Uint8Array(65537)); return false; } catch (e) { return true; } },
  });
}
