// Covers: k6/crypto md5, sha1, sha256, sha512 (hex and base64) and hmac
// (hex and base64), also on a response body.
import http from 'k6/http';
import { check } from 'k6';
import crypto from 'k6/crypto';
import { sha256, hmac } from 'k6/crypto';

const BASE = __ENV.TARGET_URL;
const FOX = 'The quick brown fox jumps over the lazy dog';

export const options = { iterations: 2 };

export default function () {
  check(null, {
    'md5 hex': () => crypto.md5('hello', 'hex') === '5d41402abc4b2a76b9719d911017c592',
    'md5 base64': () => crypto.md5('hello', 'base64') === 'XUFAKrxLKna5cZ2REBfFkg==',
    'sha1 hex': () => crypto.sha1('hello', 'hex') === 'aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d',
    'sha256 hex': () => sha256('hello', 'hex') === '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824',
    'sha256 base64': () => sha256('hello', 'base64') === 'LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=',
    'sha512 hex': () =>
      crypto.sha512('hello', 'hex') ===
      '9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043',
    'hmac sha256 hex': () =>
      hmac('sha256', 'key', FOX, 'hex') === 'f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8',
    'hmac sha1 base64': () => crypto.hmac('sha1', 'key', FOX, 'base64') === '3nybhbi3iqa8ino29wqQcBydtNk=',
  });
  const res = http.get(BASE);
  check(res, {
    'sha256 of the body': (r) => sha256(r.body, 'hex') === 'e3f633bf95777b9b0567c2e6f2ea3faca57e2fd43845b0ba9bd6b6d355c7d4e9',
  });
}
