// k6/html: parseHTML() and the Selection and Element it gives, over the
// natives in native/html.rs (the document stays native; a selection is a
// list of node numbers in document order, 0 being the document).
const v = globalThis.__volley;

// The native document behind selections: freed once no selection or
// element holds it any more.
const documents = new FinalizationRegistry((handle) => v.htmlFree(handle));
class Doc {
  constructor(handle) {
    this.handle = handle;
    documents.register(this, handle);
  }
}

const DOC = Symbol('document');
const NODES = Symbol('nodes');

function selection(doc, nodes) {
  const s = Object.create(Selection.prototype);
  s[DOC] = doc;
  s[NODES] = nodes;
  return s;
}

export class Element {
  constructor(doc, node) {
    this[DOC] = doc;
    this[NODES] = node;
  }
  nodeName() { return v.htmlName(this[DOC].handle, this[NODES]); }
  textContent() { return v.htmlText(this[DOC].handle, [this[NODES]]); }
  innerHTML() { return v.htmlInner(this[DOC].handle, this[NODES]) ?? ''; }
  getAttribute(name) { return v.htmlAttr(this[DOC].handle, this[NODES], String(name)) ?? undefined; }
  hasAttribute(name) { return this.getAttribute(name) !== undefined; }
  id() { return this.getAttribute('id'); }
  attributes() {
    const out = {};
    for (const [name, value] of v.htmlAttrs(this[DOC].handle, this[NODES])) {
      out[name] = { name, value };
    }
    return out;
  }
  selection() { return selection(this[DOC], [this[NODES]]); }
}

export class Selection {
  constructor() {
    throw new TypeError('a Selection comes from parseHTML() or Response.html()');
  }
  find(selector) {
    return selection(this[DOC], v.htmlFind(this[DOC].handle, this[NODES], String(selector)));
  }
  filter(selector) {
    return selection(this[DOC], v.htmlFilter(this[DOC].handle, this[NODES], String(selector)));
  }
  is(selector) { return this.filter(selector).size() > 0; }
  children(selector) {
    const all = selection(this[DOC], v.htmlChildren(this[DOC].handle, this[NODES]));
    return selector === undefined ? all : all.filter(selector);
  }
  parent() { return selection(this[DOC], v.htmlParent(this[DOC].handle, this[NODES])); }
  size() { return this[NODES].length; }
  first() { return selection(this[DOC], this[NODES].slice(0, 1)); }
  last() { return selection(this[DOC], this[NODES].slice(-1)); }
  eq(i) {
    const n = this[NODES].at(Number(i));
    return selection(this[DOC], n === undefined ? [] : [n]);
  }
  get(i) {
    if (i === undefined) return this[NODES].map((n) => new Element(this[DOC], n));
    const n = this[NODES].at(Number(i));
    return n === undefined ? undefined : new Element(this[DOC], n);
  }
  slice(start, end) { return selection(this[DOC], this[NODES].slice(start, end)); }
  not(selector) {
    const out = new Set(this.filter(selector)[NODES]);
    return selection(this[DOC], this[NODES].filter((n) => !out.has(n)));
  }
  has(selector) {
    const h = this[DOC].handle;
    const s = String(selector);
    return selection(this[DOC], this[NODES].filter((n) => v.htmlFind(h, [n], s).length > 0));
  }
  toArray() { return this[NODES].map((n) => selection(this[DOC], [n])); }
  each(fn) {
    this[NODES].forEach((n, i) => fn(i, new Element(this[DOC], n)));
    return this;
  }
  // As k6: the callback gets each element as a Selection of its own.
  map(fn) {
    return this[NODES].map((n, i) => fn(i, selection(this[DOC], [n])));
  }
  attr(name, otherwise) {
    const n = this[NODES][0];
    const got = n === undefined ? null : v.htmlAttr(this[DOC].handle, n, String(name));
    return got ?? otherwise;
  }
  text() { return v.htmlText(this[DOC].handle, this[NODES]); }
  html() {
    const n = this[NODES][0];
    return n === undefined ? undefined : (v.htmlInner(this[DOC].handle, n) ?? undefined);
  }
  val() {
    const n = this[NODES][0];
    return n === undefined ? undefined : (v.htmlValue(this[DOC].handle, n) ?? undefined);
  }
}

export function parseHTML(src) {
  return selection(new Doc(v.htmlParse(String(src ?? ''))), [0]);
}

export default { parseHTML, Selection, Element };
