// k6/data: SharedArray, built once per process by the first VU that asks
// for it; every VU reads the same JSON text and keeps a frozen copy.
const v = globalThis.__volley;

export class SharedArray {
  constructor(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('SharedArray needs a function that returns an array');
    const text = v.shared(String(name), () => {
      const value = fn();
      if (!Array.isArray(value)) throw new TypeError('the SharedArray function must return an array');
      return JSON.stringify(value);
    });
    const arr = JSON.parse(text);
    return Object.freeze(arr);
  }
}

export default { SharedArray };
