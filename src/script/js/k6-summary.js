// Volley's built-in copy of the k6-summary helpers
// (jslib.k6.io/k6-summary), so handleSummary() works offline.
// textSummary() returns Volley's own end-of-test summary of this run (the
// one printed without handleSummary); of its options only enableColors is
// read, and colours are never written (they would land in files).
const v = globalThis.__volley;

export function textSummary(data, options) {
  return v.textSummary();
}

function escapeXml(s) {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

// One <testcase> per threshold, a <failure> for each that did not hold.
export function jUnit(data, options) {
  const name = (options && options.name) || 'k6 thresholds';
  const cases = [];
  let failures = 0;
  for (const metricName of Object.keys(data.metrics)) {
    const t = data.metrics[metricName].thresholds || {};
    for (const expr of Object.keys(t)) {
      const caseName = `${metricName} - ${expr}`;
      if (t[expr].ok) {
        cases.push(`<testcase name="${escapeXml(caseName)}" />`);
      } else {
        failures++;
        cases.push(`<testcase name="${escapeXml(caseName)}"><failure message="failed" /></testcase>`);
      }
    }
  }
  return `<?xml version="1.0"?>\n<testsuites tests="${cases.length}" failures="${failures}">\n` +
    `<testsuite name="${escapeXml(name)}" tests="${cases.length}" failures="${failures}">` +
    cases.join('\n') + '\n</testsuite>\n</testsuites>';
}

export function humanizeValue(val, metric, timeUnit) {
  if (metric && metric.contains === 'time') return `${Number(val).toFixed(2)}ms`;
  if (metric && metric.type === 'rate') return `${(Number(val) * 100).toFixed(2)}%`;
  return String(val);
}
