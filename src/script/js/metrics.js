// k6/metrics: custom Counter, Gauge, Rate and Trend. They are declared in
// the init context; add() records a sample with the VU's scenario and
// group and the given tags.
const v = globalThis.__volley;

class Metric {
  constructor(name, isTime, kind) {
    this.name = String(name);
    this.type = kind;
    this.isTime = !!isTime;
    Object.defineProperty(this, '__id', { value: v.metricDeclare(this.name, kind, !!isTime) });
  }
  add(value, tags) {
    v.metricAdd(this.__id, Number(value), tags === undefined ? null : tags);
    return true;
  }
}

export class Counter extends Metric {
  constructor(name, isTime) { super(name, isTime, 'counter'); }
}
export class Gauge extends Metric {
  constructor(name, isTime) { super(name, isTime, 'gauge'); }
}
export class Rate extends Metric {
  constructor(name, isTime) { super(name, isTime, 'rate'); }
}
export class Trend extends Metric {
  constructor(name, isTime) { super(name, isTime, 'trend'); }
}

export default { Counter, Gauge, Rate, Trend };
