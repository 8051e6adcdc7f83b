// The report and the live dashboard: renders the data embedded in the
// page, and, on the dashboard, polls the same-origin URL for fresh data.
(function () {
  function parse(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function header(meta) {
    document.getElementById("title").textContent = meta.source;
    var status = document.getElementById("status");
    status.textContent = meta.status;
    status.className = "badge " + meta.status;
    status.setAttribute("data-status", meta.status);
    var items = [
      ["Execution", meta.execution + (meta.testId ? " (test " + meta.testId + ")" : "")],
      ["Started", V.time(meta.startUnixMs)],
      ["Duration", V.duration(meta.durationMs)],
      ["VUs (max)", String(meta.vusMax)]
    ];
    document.getElementById("meta").replaceChildren.apply(
      document.getElementById("meta"),
      items.map(function (kv) {
        return V.el("div", null, [V.el("dt", { text: kv[0] }), V.el("dd", { text: kv[1] })]);
      })
    );
  }

  function thresholds(rows) {
    if (rows.length === 0) { return V.el("p", { className: "muted", text: "No thresholds." }); }
    return V.table("threshold-table", [
      { label: "", cell: function (t) {
        return { text: t.ok ? "✓ pass" : (t.aborted ? "✗ fail (aborted the test)" : "✗ fail"),
          className: t.ok ? "ok" : "bad", attrs: { "data-ok": String(t.ok) } };
      } },
      { label: "Metric", cell: function (t) { return t.metric; } },
      { label: "Threshold", cell: function (t) { return t.source; } },
      { label: "Observed", num: true, cell: function (t) { return V.num(t.observed, 3); } }
    ], rows.map(function (t) { return { data: t, attrs: { "data-threshold": t.metric + " " + t.source } }; }));
  }

  function checks(rows) {
    if (rows.length === 0) { return V.el("p", { className: "muted", text: "No checks." }); }
    return V.table("check-table", [
      { label: "", cell: function (c) { return { text: c.fails === 0 ? "✓" : "✗", className: c.fails === 0 ? "ok" : "bad" }; } },
      { label: "Check", cell: function (c) { return (c.group ? c.group + " › " : "") + c.name; } },
      { label: "Passes", num: true, cell: function (c) { return { text: c.passes, attrs: { "data-passes": c.passes } }; } },
      { label: "Fails", num: true, cell: function (c) { return { text: c.fails, attrs: { "data-fails": c.fails } }; } },
      { label: "Rate", num: true, cell: function (c) {
        var n = c.passes + c.fails; return n ? V.pct(c.passes / n) : "-";
      } }
    ], rows.map(function (c) { return { data: c, attrs: { "data-check": c.name } }; }));
  }

  function scenarios(rows) {
    if (rows.length === 0) { return V.el("p", { className: "muted", text: "No scenario results yet." }); }
    return V.table("scenario-table", [
      { label: "Scenario", cell: function (s) { return s.name; } },
      { label: "Requests", num: true, cell: function (s) { return { text: V.num(s.requests, 0), attrs: { "data-value": s.requests } }; } },
      { label: "req/s", num: true, cell: function (s) { return V.num(s.rps); } },
      { label: "Iterations", num: true, cell: function (s) { return V.num(s.iterations, 0); } },
      { label: "Failed", num: true, cell: function (s) { return V.pct(s.failedRate); } },
      { label: "p95", num: true, cell: function (s) { return V.ms(s.p95Ms); } },
      { label: "Checks ✓/✗", num: true, cell: function (s) { return s.checksPassed + " / " + s.checksFailed; } }
    ], rows.map(function (s) { return { data: s, attrs: { "data-scenario": s.name } }; }));
  }

  function metrics(rows) {
    var body = rows.map(function (m) {
      var values = m.values.map(function (kv) {
        var shown = m.kind === "trend" && kv[0] !== "count" ? V.ms(kv[1])
          : (m.kind === "rate" && kv[0] === "rate" ? V.pct(kv[1]) : V.num(kv[1]));
        return V.el("span", { className: "stat", "data-stat": kv[0], "data-value": kv[1] },
          [V.el("span", { className: "muted", text: kv[0] + "=" }), shown + "  "]);
      });
      return V.el("tr", { "data-metric": m.key, "data-kind": m.kind }, [
        V.el("td", { text: m.key }), V.el("td", { className: "muted", text: m.kind }), V.el("td", null, values)
      ]);
    });
    return V.el("table", { id: "metric-table" }, [
      V.el("thead", null, [V.el("tr", null, [V.el("th", { text: "Metric" }), V.el("th", { text: "Type" }), V.el("th", { text: "Values" })])]),
      V.el("tbody", null, body)
    ]);
  }

  function errors(rows) {
    if (rows.length === 0) { return V.el("p", { className: "muted", text: "No failed requests." }); }
    return V.table("error-table", [
      { label: "Error", cell: function (e) { return e[0]; } },
      { label: "Count", num: true, cell: function (e) { return e[1]; } }
    ], rows);
  }

  function breakdown(rows) {
    return V.table("breakdown-table", [
      { label: "By", cell: function (b) { return b.dimension; } },
      { label: "Name", cell: function (b) { return b.value; } },
      { label: "Requests", num: true, cell: function (b) { return { text: b.requests, attrs: { "data-value": b.requests } }; } },
      { label: "Failed", num: true, cell: function (b) { return b.failed; } },
      { label: "req/s", num: true, cell: function (b) { return V.num(b.rps); } },
      { label: "p50", num: true, cell: function (b) { return V.ms(b.p50Ms); } },
      { label: "p95", num: true, cell: function (b) { return V.ms(b.p95Ms); } },
      { label: "p99", num: true, cell: function (b) { return V.ms(b.p99Ms); } }
    ], rows.map(function (b) { return { data: b, attrs: { "data-dimension": b.dimension, "data-name": b.value } }; }));
  }

  function fleet(f) {
    var parts = [V.el("p", { id: "start-spread", text: "Start spread: " +
      (f.startSpreadMs === null || f.startSpreadMs === undefined ? "not known" : V.ms(f.startSpreadMs)) })];
    if (f.agents.length > 0) {
      parts.push(V.table("agent-table", [
        { label: "Agent", cell: function (a) { return a.agent; } },
        { label: "Region", cell: function (a) { return a.region || "-"; } },
        { label: "Share", cell: function (a) { return a.share; } },
        { label: "State", cell: function (a) { return a.state; } },
        { label: "Started", cell: function (a) { return V.time(a.startedUnixMs); } },
        { label: "Requests", num: true, cell: function (a) { return a.requests; } },
        { label: "Failed", num: true, cell: function (a) { return a.failed; } }
      ], f.agents));
    }
    parts.push(V.el("h3", { text: "Incidents" }));
    parts.push(f.incidents.length === 0 ? V.el("p", { className: "muted", text: "None." })
      : V.el("ul", { id: "incidents", className: "plain" }, f.incidents.map(function (i) { return V.el("li", { text: i }); })));
    return V.el("div", null, parts);
  }

  var current = null;

  function render(data) {
    current = data;
    header(data.meta);
    V.testCharts(data.timeline, data.scenarios);
    var s = data.summary;
    if (s) {
      V.fill("thresholds", thresholds(s.thresholds));
      V.fill("checks", checks(s.checks));
      V.fill("scenarios", scenarios(s.scenarios));
      V.fill("errors", errors(s.errors));
      V.fill("metrics", metrics(s.metrics));
      V.fill("breakdown", breakdown(s.breakdown), s.breakdown.length > 0);
      V.fill("notes", V.el("ul", { className: "plain" }, s.notes.map(function (n) { return V.el("li", { text: n }); })), s.notes.length > 0);
    }
    if (data.fleet) { V.fill("fleet", fleet(data.fleet), true); }
    V.rendered();
  }

  var data = parse("volley-data");
  var config = parse("volley-config") || {};
  render(data);
  if (config.liveUrl) {
    var poll = function () {
      fetch(config.liveUrl, { cache: "no-store" })
        .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
        .then(function (fresh) {
          render(fresh);
          if (fresh.meta.status === "running") { setTimeout(poll, config.periodMs); }
        })
        .catch(function () {
          // The run ended and its server is gone: keep the last picture.
          var status = document.getElementById("status");
          status.textContent = status.textContent + " (disconnected)";
        });
    };
    setTimeout(poll, 0);
  }
  window.addEventListener("resize", function () { V.testCharts(current.timeline, current.scenarios); });
})();
