// k6/http: requests are sent by the VU's native client; the script sees
// them as synchronous calls (the VU is suspended while the request runs).
import { parseHTML } from 'k6/html';
import { formEncode } from 'volley:form';

const v = globalThis.__volley;

function canonical(name) {
  return String(name).toLowerCase().replace(/(^|-)([a-z])/g, (m, d, c) => d + c.toUpperCase());
}

function selectPath(value, selector) {
  let cur = value;
  for (const part of String(selector).split('.')) {
    if (cur === null || cur === undefined) return undefined;
    const m = /^(.*?)\[(\d+)\]$/.exec(part);
    if (m) {
      if (m[1] !== '') cur = cur[m[1]];
      cur = cur === undefined || cur === null ? undefined : cur[Number(m[2])];
    } else if (part === '#') {
      return Array.isArray(cur) ? cur.length : undefined;
    } else {
      cur = cur[part];
    }
  }
  return cur;
}

// http.file(): a part of a multipart/form-data body.
const FILE = Symbol('file');

export function file(data, filename, contentType) {
  if (typeof data !== 'string' && !(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) {
    throw new TypeError('http.file(data): data must be a string, an ArrayBuffer or a typed array');
  }
  return {
    [FILE]: true,
    data,
    filename: filename === undefined ? String(v.unixNanos()) : String(filename),
    content_type: contentType === undefined ? 'application/octet-stream' : String(contentType),
  };
}

function isFile(x) {
  return x !== null && typeof x === 'object' && x[FILE] === true;
}

function utf8(text, out) {
  for (const ch of String(text)) {
    const c = ch.codePointAt(0);
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
}

function bytesInto(data, out) {
  if (typeof data === 'string') return utf8(data, out);
  const view = data instanceof ArrayBuffer ? new Uint8Array(data)
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < view.length; i++) out.push(view[i]);
}

function quote(s) {
  return String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

// As Go's mime/multipart, which k6 uses (CRLF lines, quotes escaped); k6
// writes the parts in Go's map order, which varies per request, Volley in
// key order.
function multipart(fields, boundary) {
  const out = [];
  for (const k of Object.keys(fields).sort()) {
    const val = fields[k];
    utf8(`--${boundary}\r\n`, out);
    if (isFile(val)) {
      utf8(`Content-Disposition: form-data; name="${quote(k)}"; filename="${quote(val.filename)}"\r\n`, out);
      utf8(`Content-Type: ${val.content_type}\r\n\r\n`, out);
      bytesInto(val.data, out);
    } else {
      utf8(`Content-Disposition: form-data; name="${quote(k)}"\r\n\r\n`, out);
      utf8(val === null || val === undefined ? '' : String(val), out);
    }
    utf8('\r\n', out);
  }
  utf8(`--${boundary}--\r\n`, out);
  return out;
}

// `raw` is the native's array: [status, proto, body, error, error_code,
// blocked, connecting, tls_handshaking, sending, waiting, receiving,
// "Name\nvalue\n..." headers, final url, remote ip (IPv4 as a number),
// remote port, tls version (12, 13 or 0), tls suite]; proto is 11, 2 or 10. Scalars become own
// properties at once; headers, timings and the request are built on first
// read (most iterations only look at the status).
const RAW = Symbol('response');
const REQ = Symbol('request');

// A Response holds two hidden slots; every field is read from them through
// the prototype (adding a handful of own properties per response was a
// fifth of a request's cost). Assigning a field makes it an own property.
// `req` is the URL (a plain get) or [method, url, headers, body].
export class Response {
  constructor(raw, req) {
    this[RAW] = raw;
    this[REQ] = req;
  }
  get url() {
    const f = this[RAW][12];
    if (f !== null && f !== undefined) return f;
    const r = this[REQ];
    return typeof r === 'string' ? r : r[1];
  }
  get status_text() { return v.statusText(this.status); }
  get proto() {
    const p = this[RAW][1];
    return p === 2 ? 'HTTP/2.0' : p === 10 ? 'HTTP/1.0' : 'HTTP/1.1';
  }
  get headers() {
    const h = {};
    const text = this[RAW][11];
    if (text !== '') {
      const flat = text.split('\n');
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const k = flat[i];
        h[k] = h[k] === undefined ? flat[i + 1] : h[k] + ', ' + flat[i + 1];
      }
    }
    Object.defineProperty(this, 'headers', { value: h, writable: true, enumerable: true, configurable: true });
    return h;
  }
  set headers(value) {
    Object.defineProperty(this, 'headers', { value, writable: true, enumerable: true, configurable: true });
  }
  get timings() {
    const r = this[RAW];
    const t = {
      blocked: r[5],
      connecting: r[6],
      tls_handshaking: r[7],
      sending: r[8],
      waiting: r[9],
      receiving: r[10],
      duration: r[8] + r[9] + r[10],
    };
    Object.defineProperty(this, 'timings', { value: t, writable: true, enumerable: true, configurable: true });
    return t;
  }
  get cookies() {
    const set = [];
    const text = this[RAW][11];
    if (text !== '') {
      const flat = text.split('\n');
      for (let i = 0; i + 1 < flat.length; i += 2) {
        if (flat[i] === 'Set-Cookie') set.push(flat[i + 1]);
      }
    }
    const c = set.length === 0 ? {} : v.parseSetCookies(set);
    Object.defineProperty(this, 'cookies', { value: c, writable: true, enumerable: true, configurable: true });
    return c;
  }
  get remote_ip() {
    const ip = this[RAW][13];
    if (typeof ip === 'string') return ip;
    return ip === 0 ? '' : `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
  }
  get remote_port() { return this[RAW][14]; }
  get tls_version() {
    const t = this[RAW][15];
    return t === 13 ? 'tls1.3' : t === 12 ? 'tls1.2' : '';
  }
  get tls_cipher_suite() { return this[RAW][16]; }
  get ocsp() { return {}; }
  get request() {
    const q = this[REQ];
    const r = typeof q === 'string' ? ['GET', q, NONE, null] : q;
    const headers = {};
    for (const [k, val] of r[2]) headers[k] = [val];
    return { method: r[0], url: r[1], headers, body: typeof r[3] === 'string' ? r[3] : '', cookies: {} };
  }
  toJSON() {
    const out = {};
    for (const k of FIELDS) out[k] = this[k];
    return out;
  }
  json(selector) {
    if (this.body === null || this.body === undefined) {
      throw new Error('cannot parse a response without a body as JSON');
    }
    const parsed = JSON.parse(typeof this.body === 'string' ? this.body : v.utf8(Array.from(new Uint8Array(this.body))));
    return selector === undefined ? parsed : selectPath(parsed, selector);
  }
  // Submits a form of this (HTML) response as a browser would: its fields
  // (serializeObject), the submit button's name and value, then `fields`;
  // to its action resolved against this response's URL, by its method
  // (GET: the values become the query). As k6's.
  submitForm(args) {
    const a = args ?? {};
    const formSelector = a.formSelector === undefined ? 'form' : String(a.formSelector);
    const submitSelector = a.submitSelector === undefined ? '[type="submit"]' : String(a.submitSelector);
    const form = this.html(formSelector);
    if (form.size() === 0) {
      throw new Error(`no form found for selector '${formSelector}' in response '${this.url}'`);
    }
    const methodAttr = form.attr('method');
    const method = methodAttr === undefined ? 'GET' : String(methodAttr).toUpperCase();
    const action = form.attr('action');
    const target = action === undefined ? this.url : v.resolveUrl(this.url, String(action));
    const values = form.serializeObject();
    const submit = form.find(submitSelector);
    const submitName = submit.attr('name');
    const submitValue = submit.val();
    if (submitName !== undefined && submitValue !== undefined) values[submitName] = submitValue;
    Object.assign(values, a.fields ?? {});
    const params = a.params ?? null;
    if (method === 'GET') {
      const query = {};
      for (const k of Object.keys(values)) query[k] = String(values[k]);
      const base = target.split('#')[0].split('?')[0];
      return request('GET', `${base}?${formEncode(query)}`, null, params);
    }
    return request(method, target, values, params);
  }
  // Follows a link of this (HTML) response: the first `selector` match's
  // href, resolved against this response's URL. As k6's.
  clickLink(args) {
    const selector = args?.selector === undefined ? 'a[href]' : String(args.selector);
    const link = this.html(selector);
    if (link.size() === 0) {
      throw new Error(`no element found for selector '${selector}' in response '${this.url}'`);
    }
    const href = link.attr('href');
    if (href === undefined) {
      throw new Error(`no valid href attribute value found on element '${selector}' in response '${this.url}'`);
    }
    return request('GET', v.resolveUrl(this.url, String(href)), null, args?.params ?? null);
  }
  // The body as a k6/html Selection of the document, or of what
  // `selector` finds in it.
  html(selector) {
    const body = typeof this.body === 'string' || this.body === null || this.body === undefined
      ? this.body
      : v.utf8(Array.from(new Uint8Array(this.body)));
    const doc = parseHTML(body ?? '');
    return selector === undefined ? doc : doc.find(selector);
  }
}

// Fields read straight from the native's array, by slot.
for (const [name, slot] of [['status', 0], ['body', 2], ['error', 3], ['error_code', 4]]) {
  Object.defineProperty(Response.prototype, name, {
    get() { return this[RAW][slot]; },
    set(value) { Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true }); },
    enumerable: true,
    configurable: true,
  });
}

const FIELDS = ['status', 'status_text', 'proto', 'url', 'body', 'headers', 'timings', 'cookies',
  'error', 'error_code', 'remote_ip', 'remote_port', 'tls_version', 'tls_cipher_suite', 'ocsp'];

function normalise(method, url, body, params) {
  const p = params || {};
  const headers = [];
  let hasType = false;
  if (p.headers) {
    for (const k of Object.keys(p.headers)) {
      const name = canonical(k);
      if (name === 'Content-Type') hasType = true;
      headers.push([name, String(p.headers[k])]);
    }
  }
  let payload = null;
  if (body !== undefined && body !== null) {
    if (typeof body === 'string') {
      payload = body;
    } else if (body instanceof ArrayBuffer) {
      payload = Array.from(new Uint8Array(body));
    } else if (ArrayBuffer.isView(body)) {
      payload = Array.from(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
    } else if (typeof body === 'object' && Object.keys(body).some((k) => isFile(body[k]))) {
      const boundary = v.boundary();
      payload = multipart(body, boundary);
      if (!hasType) headers.push(['Content-Type', `multipart/form-data; boundary=${boundary}`]);
    } else if (typeof body === 'object') {
      payload = formEncode(body);
      if (!hasType) headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
    } else {
      payload = String(body);
    }
  }
  if (p.compression !== undefined && p.compression !== null && p.compression !== '' && payload !== null) {
    payload = v.compress(String(p.compression), payload);
    if (!headers.some((h) => h[0] === 'Content-Encoding')) {
      headers.push(['Content-Encoding', String(p.compression).split(',').map((x) => x.trim()).join(', ')]);
    }
  }
  const tags = [];
  if (p.tags) {
    for (const k of Object.keys(p.tags)) tags.push([String(k), String(p.tags[k])]);
  }
  let timeout = null;
  if (p.timeout !== undefined && p.timeout !== null) timeout = p.timeout;
  const u = typeof url === 'object' && url !== null && url.url !== undefined ? url.url : String(url);
  const nameTag = typeof url === 'object' && url !== null && url.name !== undefined ? url.name : null;
  if (nameTag !== null && !tags.some((t) => t[0] === 'name')) tags.push(['name', nameTag]);
  const responseType = p.responseType || null;
  const redirects = p.redirects === undefined || p.redirects === null ? null : Number(p.redirects);
  let cookies = null;
  if (p.cookies) {
    cookies = [];
    for (const k of Object.keys(p.cookies)) {
      const c = p.cookies[k];
      if (c !== null && typeof c === 'object') cookies.push([k, String(c.value), c.replace === true]);
      else cookies.push([k, String(c), false]);
    }
  }
  let jar = null;
  if (p.jar !== undefined && p.jar !== null) {
    if (!(p.jar instanceof CookieJar)) throw new TypeError('params.jar must be an http.CookieJar');
    jar = p.jar[JAR];
  }
  // null: the VU's default (http.setResponseCallback), kept natively.
  const callback = p.responseCallback;
  const expected = callback === null ? [] : callback === undefined ? null : statusRanges(callback);
  const m = String(method).toUpperCase();
  const auth = p.auth === undefined || p.auth === null ? null : String(p.auth);
  const meta = [headers, tags, timeout, responseType, redirects, cookies, jar, expected, auth];
  return { m, u, payload, meta, headers };
}

export function request(method, url, body, params) {
  const r = normalise(method, url, body, params);
  const raw = v.request(r.m, r.u, r.payload, r.meta, [0, 0, null, '', 0, 0, 0, 0, 0, 0, 0, '', null, 0, 0, 0, '']);
  return new Response(raw, [r.m, r.u, r.headers, r.payload]);
}

const NONE = [];

export function get(url, params) {
  if (params === undefined && typeof url === 'string') {
    // The common case, without the general path's normalising.
    const raw = v.request('GET', url, null, null, [0, 0, null, '', 0, 0, 0, 0, 0, 0, 0, '', null, 0, 0, 0, '']);
    return new Response(raw, url);
  }
  return request('GET', url, null, params);
}
export function head(url, params) { return request('HEAD', url, null, params); }
export function post(url, body, params) { return request('POST', url, body, params); }
export function put(url, body, params) { return request('PUT', url, body, params); }
export function patch(url, body, params) { return request('PATCH', url, body, params); }
export function del(url, body, params) { return request('DELETE', url, body, params); }
export function options(url, body, params) { return request('OPTIONS', url, body, params); }

// One batch entry as request() would send it: [method, url, payload, meta].
function prepared(method, url, body, params) {
  const r = normalise(method, url, body, params);
  return [r.m, r.u, r.payload, r.meta, [r.m, r.u, r.headers, r.payload]];
}

// http.asyncRequest: a promise of the response. The request waits in the
// VU's queue until the VU's code is idle (awaiting); the event loop then
// sends every queued request in parallel, as one batch, and settles their
// promises (see `__volley_loopStep`). A request the native side refuses
// (a bad URL, say) rejects its promise.
export function asyncRequest(method, url, body, params) {
  return new Promise((resolve, reject) => {
    const e = prepared(method, url, body, params);
    v.vu().pending.push({
      entry: e.slice(0, 4),
      out: [0, 0, null, '', 0, 0, 0, 0, 0, 0, 0, '', null, 0, 0, 0, ''],
      resolve: (raw) => resolve(new Response(raw, e[4])),
      reject,
    });
  });
}

export function batch(requests) {
  const entry = (r) => {
    if (typeof r === 'string') return prepared('GET', r, null, undefined);
    if (Array.isArray(r)) return prepared(r[0], r[1], r[2], r[3]);
    const m = String(r.method || 'GET').toUpperCase();
    const body = m === 'GET' || m === 'HEAD' ? null : r.body;
    return prepared(m, r.url, body, r.params);
  };
  const keys = Array.isArray(requests) ? null : Object.keys(requests);
  const list = keys === null ? requests.map(entry) : keys.map((k) => entry(requests[k]));
  const outs = list.map(() => [0, 0, null, '', 0, 0, 0, 0, 0, 0, 0, '', null, 0, 0, 0, '']);
  const raws = v.batch(list.map((e) => e.slice(0, 4)), outs);
  const responses = raws.map((raw, i) => new Response(raw, list[i][4]));
  if (keys === null) return responses;
  const out = {};
  keys.forEach((k, i) => { out[k] = responses[i]; });
  return out;
}

// Response callbacks: k6 accepts only those made by expectedStatuses().
const RANGES = Symbol('expectedStatuses');

export function expectedStatuses(...specs) {
  // As k6: a callback that expects nothing is refused ([] means null below).
  if (specs.length === 0) throw new Error('no arguments');
  const ranges = [];
  for (const s of specs) {
    if (typeof s === 'number' && Number.isInteger(s)) {
      ranges.push([s, s]);
    } else if (s !== null && typeof s === 'object' && Number.isInteger(s.min) && Number.isInteger(s.max)) {
      ranges.push([s.min, s.max]);
    } else {
      throw new TypeError(`expectedStatuses: ${JSON.stringify(s)} is neither a status code nor {min, max}`);
    }
  }
  return { [RANGES]: ranges };
}

function statusRanges(callback) {
  if (callback === null || typeof callback !== 'object' || callback[RANGES] === undefined) {
    throw new TypeError('a response callback must come from http.expectedStatuses() (or be null)');
  }
  return callback[RANGES];
}

// The VU's default callback is kept natively (a VU's own, though this
// module is its realm's): [] is null, no callback (responses are not
// judged: no expected_response tag, no http_req_failed sample).
export function setResponseCallback(callback) {
  v.defaultExpected(callback === null ? [] : statusRanges(callback));
}

// A jar's native handle; null is the VU's own jar. Jars the script
// creates are freed when their object is collected.
const JAR = Symbol('jar');
const jars = new FinalizationRegistry((handle) => v.jarFree(handle));

export class CookieJar {
  constructor() {
    const handle = v.jarNew();
    this[JAR] = handle;
    jars.register(this, handle);
  }
  cookiesForURL(url) { return v.jarCookies(this[JAR], String(url)); }
  set(url, name, value, options) {
    v.jarSet(this[JAR], String(url), String(name), String(value), options || {});
  }
  clear(url) { v.jarDelete(this[JAR], String(url)); }
  delete(url, name) { v.jarDelete(this[JAR], String(url), String(name)); }
}

// The VU's own jar (the null handle: the running VU's).
export function cookieJar() {
  const jar = Object.create(CookieJar.prototype);
  jar[JAR] = null;
  return jar;
}

export function url(strings, ...values) {
  let name = '';
  let full = '';
  strings.forEach((s, i) => {
    name += s;
    full += s;
    if (i < values.length) {
      name += '${}';
      full += String(values[i]);
    }
  });
  return { url: full, name };
}

export const TLS_1_0 = 'tls1.0';
export const TLS_1_1 = 'tls1.1';
export const TLS_1_2 = 'tls1.2';
export const TLS_1_3 = 'tls1.3';

export default {
  request, asyncRequest, get, head, post, put, patch, del, options, batch, url, file, Response, CookieJar, cookieJar,
  expectedStatuses, setResponseCallback,
  TLS_1_0, TLS_1_1, TLS_1_2, TLS_1_3,
};
