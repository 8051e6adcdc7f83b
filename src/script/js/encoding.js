// k6/encoding: base64 in its std, rawstd, url and rawurl forms.
const v = globalThis.__volley;

function bytes(input) {
  if (input instanceof ArrayBuffer) return Array.from(new Uint8Array(input));
  if (ArrayBuffer.isView(input)) return Array.from(new Uint8Array(input.buffer, input.byteOffset, input.byteLength));
  return String(input);
}

export function b64encode(input, encoding) {
  return v.b64encode(bytes(input), encoding || 'std');
}

export function b64decode(input, encoding, format) {
  return v.b64decode(String(input), encoding || 'std', format || '');
}

export default { b64encode, b64decode };
