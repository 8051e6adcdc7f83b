// k6/execution: fresh objects from the VU's state on every read, as in k6.
const v = globalThis.__volley;

const exec = {
  get vu() {
    const s = v.state();
    return { idInTest: s.vu, idInInstance: s.vu, iterationInInstance: s.iter, iterationInScenario: s.iterInScenario, tags: {} };
  },
  get scenario() {
    const s = v.state();
    return { name: s.scenario, executor: s.executor, startTime: s.scenarioStart, progress: 0, iterationInInstance: s.iterationInTest, iterationInTest: s.iterationInTest };
  },
  get instance() {
    const s = v.state();
    return { currentTestRunDuration: s.elapsedMs, iterationsCompleted: 0, iterationsInterrupted: 0, vusActive: 0, vusInitialized: 0 };
  },
  test: {
    abort(message) { v.abort(message === undefined ? '' : String(message)); },
    fail(message) { v.markFailed(message === undefined ? '' : String(message)); },
    get options() { return v.options(); },
  },
};


export default exec;
