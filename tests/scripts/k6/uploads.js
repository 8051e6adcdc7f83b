// Covers: http.file() parts in a multipart/form-data body (text and
// binary data, filename, content type, plain fields beside them), the
// `compression` param (gzip, deflate, br, zstd, a list) with Content-Encoding set,
// and a gzip response decoded for the script (the target echoes the
// body with its coding).
import http from 'k6/http';
import { check } from 'k6';

const BASE = __ENV.TARGET_URL;

export const options = { iterations: 2 };

const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]).buffer;

export default function () {
  const res = http.post(`${BASE}/echo`, {
    note: 'hello',
    doc: http.file('line one\nline two', 'notes.txt', 'text/plain'),
    blob: http.file(bytes, 'blob.bin'),
  });
  const type = res.headers['Content-Type'] || '';
  const boundary = type.split('boundary=')[1];
  check(res, {
    'multipart content type': () => type.startsWith('multipart/form-data; boundary='),
    'text part with its filename': (r) =>
      r.body.includes('Content-Disposition: form-data; name="doc"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\nline one\nline two\r\n'),
    'binary part defaults to octet-stream': (r) =>
      r.body.includes('name="blob"; filename="blob.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'),
    'plain field': (r) => r.body.includes('Content-Disposition: form-data; name="note"\r\n\r\nhello\r\n'),
    'closing boundary': (r) => r.body.endsWith(`--${boundary}--\r\n`),
  });
  const bin = http.post(`${BASE}/echo`, { blob: http.file(bytes, 'b.bin') }, { responseType: 'binary' });
  check(bin, {
    'binary bytes intact': (r) => {
      const all = new Uint8Array(r.body);
      for (let i = 0; i + 5 < all.length; i++) {
        if (all[i] === 0 && all[i + 1] === 1 && all[i + 2] === 2 && all[i + 3] === 253 && all[i + 5] === 255) return true;
      }
      return false;
    },
  });
  for (const c of ['gzip', 'deflate', 'gzip, deflate', 'br', 'zstd', 'zstd, br']) {
    const z = http.post(`${BASE}/echo`, 'a compressible body a compressible body', {
      compression: c,
      headers: { 'Content-Type': 'text/plain' },
    });
    check(z, {
      [`${c}: decoded back for the script`]: (r) => r.body === 'a compressible body a compressible body',
      [`${c}: Content-Encoding sent`]: (r) => r.headers['Content-Encoding'] === c,
    });
  }
}
