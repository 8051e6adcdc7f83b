// k6/crypto: digests and HMAC computed natively.
const v = globalThis.__volley;

function bytes(input) {
  if (input instanceof ArrayBuffer) return Array.from(new Uint8Array(input));
  if (ArrayBuffer.isView(input)) return Array.from(new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  return String(input);
}

function digest(algorithm) {
  return (input, outputEncoding) => v.digest(algorithm, bytes(input), outputEncoding || 'binary');
}

export const md5 = digest('md5');
export const sha1 = digest('sha1');
export const sha256 = digest('sha256');
export const sha384 = digest('sha384');
export const sha512 = digest('sha512');

export function hmac(algorithm, secret, data, outputEncoding) {
  return v.hmac(String(algorithm), bytes(secret), bytes(data), outputEncoding || 'binary');
}

export function randomBytes(n) {
  return new Uint8Array(v.randomBytes(Number(n))).buffer;
}

export function createHash(algorithm) {
  let chunks = [];
  return {
    update(x) { chunks.push(x); return this; },
    digest(enc) { return v.digest(String(algorithm), chunks.join(''), enc || 'binary'); },
  };
}

export default { md5, sha1, sha256, sha384, sha512, hmac, randomBytes, createHash };
