// Form encoding shared by k6/http (object bodies) and k6/html
// (Selection.serialize()).

// As Go's url.Values.Encode, which k6 uses: keys sorted, `+` for spaces,
// everything but [A-Za-z0-9-_.~] percent-encoded.
export function formEscape(x) {
  return encodeURIComponent(x)
    .replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%20/g, '+');
}

export function formEncode(obj) {
  const parts = [];
  for (const k of Object.keys(obj).sort()) {
    const val = obj[k];
    const vals = Array.isArray(val) ? val : [val];
    for (const x of vals) {
      parts.push(formEscape(k) + '=' + formEscape(x === null ? '<nil>' : String(x)));
    }
  }
  return parts.join('&');
}
