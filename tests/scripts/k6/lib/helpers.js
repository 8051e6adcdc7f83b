// Helper module for local_imports.js: named and default exports, a
// constant, and its own imports of k6 modules and of ./format.js.
import http from 'k6/http';
import { check } from 'k6';
import { joinUrl } from './format.js';

export const GREETING = 'hello from helpers';

export function getPath(base, path) {
  return http.get(joinUrl(base, path));
}

export function checkOk(res, label) {
  return check(res, { [`${label} is 200`]: (r) => r.status === 200 });
}

export default function shout(text) {
  return text.toUpperCase();
}
