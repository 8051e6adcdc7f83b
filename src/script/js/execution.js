// k6/execution: fresh objects from the VU's state on every read, as in k6.
const v = globalThis.__volley;

// exec.vu.metrics.tags (and exec.vu.tags): the running VU's own tags, kept
// natively; every later request, check and custom metric sample of the VU
// carries them. `scenario` and `group` read as the VU's current ones.
const TAG_TYPES = ['string', 'number', 'boolean'];
const own = (key) => {
  const found = v.vuTags().find(([k]) => k === key);
  return found === undefined ? undefined : found[1];
};
const tagsHandler = {
  get(_, key) {
    if (typeof key !== 'string') return undefined;
    if (key === 'scenario' || key === 'group') return v.state()[key];
    return own(key);
  },
  set(_, key, value) {
    if (!TAG_TYPES.includes(typeof value)) {
      throw new TypeError(`exec.vu.metrics.tags["${String(key)}"]: a tag is a string, number or boolean, not ${typeof value}`);
    }
    v.setVuTag(String(key), String(value));
    return true;
  },
  deleteProperty(_, key) {
    v.setVuTag(String(key), null);
    return true;
  },
  has(_, key) { return key === 'scenario' || key === 'group' || own(key) !== undefined; },
  ownKeys() { return ['scenario', 'group', ...v.vuTags().map(([k]) => k)]; },
  getOwnPropertyDescriptor(target, key) {
    const value = tagsHandler.get(target, key);
    return value === undefined ? undefined : { value, writable: true, enumerable: true, configurable: true };
  },
};
const vuTags = new Proxy({}, tagsHandler);

const exec = {
  get vu() {
    const s = v.state();
    const record = v.vu();
    if (record.metadata === undefined) record.metadata = {};
    return {
      idInTest: s.vu,
      idInInstance: s.vu,
      iterationInInstance: s.iter,
      iterationInScenario: s.iterInScenario,
      tags: vuTags,
      metrics: { tags: vuTags, metadata: record.metadata },
    };
  },
  get scenario() {
    const s = v.state();
    return { name: s.scenario, executor: s.executor, startTime: s.scenarioStart, progress: 0, iterationInInstance: s.iterationInTest, iterationInTest: s.iterationInTest };
  },
  get instance() {
    const s = v.state();
    return {
      currentTestRunDuration: s.elapsedMs,
      iterationsCompleted: s.iterationsCompleted ?? 0,
      iterationsInterrupted: s.iterationsInterrupted ?? 0,
      vusActive: s.vusActive ?? 0,
      vusInitialized: s.vusInitialized ?? 0,
    };
  },
  test: {
    abort(message) { v.abort(message === undefined ? '' : String(message)); },
    fail(message) { v.markFailed(message === undefined ? '' : String(message)); },
    get options() { return v.options(); },
  },
};


export default exec;
