// k6/html: parseHTML() and the Selection and Element it gives, over the
// natives in native/html.rs (the document stays native; a selection is a
// list of node numbers in document order, 0 being the document).
import { formEncode } from 'volley:form';

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
    return n === undefined ? '' : (v.htmlInner(this[DOC].handle, n) ?? '');
  }
  val() {
    const n = this[NODES][0];
    if (n === undefined) return undefined;
    const h = this[DOC].handle;
    const values = v.htmlValue(h, n);
    if (values === null || values === undefined) return undefined;
    if (v.htmlName(h, n) === 'select' && v.htmlAttr(h, n, 'multiple') != null) return values;
    return values[0] ?? '';
  }
  next(selector) { return this.around('next', selector); }
  nextAll(selector) { return this.around('nextAll', selector); }
  prev(selector) { return this.around('prev', selector); }
  prevAll(selector) { return this.around('prevAll', selector); }
  siblings(selector) { return this.around('siblings', selector); }
  around(which, selector) {
    const all = selection(this[DOC], v.htmlSiblings(this[DOC].handle, this[NODES], which));
    return selector === undefined ? all : all.filter(selector);
  }
  closest(selector) {
    return selection(this[DOC], v.htmlClosest(this[DOC].handle, this[NODES], String(selector)));
  }
  // A form's fields (or these fields) as k6 serialises them: named, not
  // disabled, not buttons or files, checkboxes and radios only if checked.
  serializeArray() {
    const fields = 'input,select,textarea,keygen';
    const all = this.is('form') ? this.find(fields) : this.filter(fields);
    const out = [];
    all.each((_, el) => {
      const name = el.getAttribute('name') ?? '';
      const type = el.getAttribute('type') ?? '';
      const checked = el.getAttribute('checked') ?? '';
      if (name === '' || (el.getAttribute('disabled') ?? '') === 'disabled') return;
      if (['submit', 'button', 'reset', 'image', 'file'].includes(type)) return;
      if (checked !== 'checked' && (type === 'checkbox' || type === 'radio')) return;
      out.push({ name, value: el.selection().val() });
    });
    return out;
  }
  serializeObject() {
    const out = {};
    for (const { name, value } of this.serializeArray()) out[name] = value;
    return out;
  }
  serialize() {
    const values = {};
    for (const { name, value } of this.serializeArray()) {
      if (typeof value === 'string' || Array.isArray(value)) values[name] = value;
    }
    return formEncode(values);
  }
}

export function parseHTML(src) {
  return selection(new Doc(v.htmlParse(String(src ?? ''))), [0]);
}

export default { parseHTML, Selection, Element };
