// The agent's /ui: the fleet's members, the running test (live numbers,
// charts of its merged intervals, from the last minute before the page
// opened on, each agent and region) and the fleet's tests with their results. Read-only: it asks
// the API's GET endpoints of its own origin, which need no token.
(function () {
  var PERIOD_MS = 1000;
  var MAX_POINTS = 3600;
  var running = { id: null, points: [] };
  var shown = null;

  function get(path) {
    return fetch(path, { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error(path + ": HTTP " + r.status); }
      return r.json();
    });
  }

  function members(list) {
    var self = list.filter(function (m) { return m.isSelf; })[0];
    var meta = document.getElementById("meta");
    meta.replaceChildren(
      V.el("div", null, [V.el("dt", { text: "This agent" }), V.el("dd", { text: self ? self.nodeId : "-" })]),
      V.el("div", null, [V.el("dt", { text: "Members" }), V.el("dd", { id: "member-count", text: String(list.length) })]),
      V.el("div", null, [V.el("dt", { text: "Updated" }), V.el("dd", { text: new Date().toISOString().slice(11, 19) + " UTC" })])
    );
    V.fill("members", V.table("member-table", [
      { label: "Node", cell: function (m) { return m.nodeId + (m.isSelf ? " (this agent)" : ""); } },
      { label: "State", cell: function (m) { return { text: m.state, attrs: { "data-state": m.state } }; } },
      { label: "Identity", cell: function (m) { return m.isSelf ? "self" : m.identity; } },
      { label: "Capacity", num: true, cell: function (m) { return { text: V.num(m.capacity), attrs: { "data-value": m.capacity } }; } },
      { label: "Labels", cell: function (m) {
        return Object.keys(m.labels || {}).map(function (k) { return k + "=" + m.labels[k]; }).join(", ") || "-";
      } },
      { label: "Clock offset", num: true, cell: function (m) { return m.clockOffsetMs === undefined ? "-" : V.ms(m.clockOffsetMs); } },
      { label: "RTT", num: true, cell: function (m) { return m.rttMs === undefined ? "-" : V.ms(m.rttMs); } },
      { label: "Test", cell: function (m) { return m.test || ""; } },
      { label: "Version", cell: function (m) { return m.version + (m.problem ? " (" + m.problem + ")" : ""); } }
    ], list.map(function (m) { return { data: m, attrs: { "data-node": m.nodeId } }; })));
  }

  function live(view) {
    if (running.id !== view.id) { running = { id: view.id, points: [] }; shown = null; }
    var l = view.live;
    // The fleet's merged intervals of the last minute: a page opened
    // mid-test starts with them, later polls add the newer ones.
    ((l && l.recent) || []).forEach(function (p) {
      var tMs = p.endUnixMs - view.startUnixMs;
      var last = running.points[running.points.length - 1];
      if (last && last.tMs >= tMs) { return; }
      running.points.push({ tMs: tMs, rps: p.spanMs > 0 ? p.requests / (p.spanMs / 1000) : 0,
        vus: p.vus === undefined ? null : p.vus, vusMax: null,
        p50Ms: p.p50Ms, p95Ms: p.p95Ms, p99Ms: p.p99Ms,
        failedRate: p.requests ? p.failed / p.requests : null });
      if (running.points.length > MAX_POINTS) { running.points.shift(); }
    });
    var stats = l ? [
      ["Elapsed", V.duration(l.elapsedMs)], ["VUs", String(l.vus)], ["req/s", V.num(l.rps)],
      ["p50", V.ms(l.p50Ms)], ["p95", V.ms(l.p95Ms)], ["p99", V.ms(l.p99Ms)],
      ["Requests", String(l.requests)], ["Failed", String(l.failed)], ["Iterations", String(l.iterations)]
    ] : [];
    var parts = [
      V.el("p", null, [V.el("strong", { id: "running-id", text: view.id }), " " + view.name + " ",
        V.el("span", { className: "badge " + view.phase, "data-phase": view.phase, text: view.phase }),
        " coordinated by " + view.origin + ", " + view.agents + " agent(s)" +
        (view.startSpreadMs === undefined ? "" : ", start spread " + V.ms(view.startSpreadMs))]),
      V.el("dl", { id: "running-live", className: "inline" }, stats.map(function (kv) {
        return V.el("div", null, [V.el("dt", { text: kv[0] }), V.el("dd", { text: kv[1] })]);
      }))
    ];
    if (l && l.thresholds.length) {
      parts.push(V.table("running-thresholds", [
        { label: "", cell: function (t) { return { text: t.ok ? "✓" : "✗", className: t.ok ? "ok" : "bad" }; } },
        { label: "Threshold", cell: function (t) { return t.key + " " + t.source; } },
        { label: "Now", num: true, cell: function (t) { return V.num(t.observed, 3); } }
      ], l.thresholds));
    }
    if (view.incidents.length) {
      parts.push(V.el("ul", { className: "plain" }, view.incidents.map(function (i) { return V.el("li", { text: i }); })));
    }
    V.fill("running", V.el("div", null, parts));
    V.testCharts(running.points, []);
    var regions = {};
    view.agentStates.forEach(function (a) {
      var r = a.region || "-";
      regions[r] = regions[r] || { region: r, agents: 0, rps: 0, requests: 0, failed: 0 };
      regions[r].agents += 1; regions[r].rps += a.rps; regions[r].requests += a.requests; regions[r].failed += a.failed;
    });
    document.getElementById("running-agents").replaceChildren(
      V.el("h3", { text: "By region" }),
      V.table("running-regions", [
        { label: "Region", cell: function (r) { return r.region; } },
        { label: "Agents", num: true, cell: function (r) { return r.agents; } },
        { label: "req/s", num: true, cell: function (r) { return V.num(r.rps); } },
        { label: "Requests", num: true, cell: function (r) { return r.requests; } },
        { label: "Failed", num: true, cell: function (r) { return r.failed; } }
      ], Object.keys(regions).sort().map(function (k) { return regions[k]; })),
      V.el("h3", { text: "By agent" }),
      V.table("running-agent-table", [
        { label: "Agent", cell: function (a) { return a.agent; } },
        { label: "Region", cell: function (a) { return a.region || "-"; } },
        { label: "State", cell: function (a) { return a.state; } },
        { label: "Share", cell: function (a) { return a.share; } },
        { label: "req/s", num: true, cell: function (a) { return V.num(a.rps); } },
        { label: "Requests", num: true, cell: function (a) { return a.requests; } },
        { label: "Failed", num: true, cell: function (a) { return a.failed; } }
      ], view.agentStates)
    );
  }

  function history(tests) {
    V.fill("history", tests.length === 0 ? V.el("p", { className: "muted", text: "No tests yet." })
      : V.table("test-table", [
        { label: "Test", cell: function (t) { return t.id; } },
        { label: "Name", cell: function (t) { return t.name; } },
        { label: "Phase", cell: function (t) { return { text: t.phase, className: t.passed === false ? "bad" : (t.passed ? "ok" : "") }; } },
        { label: "Started", cell: function (t) { return V.time(t.startUnixMs); } },
        { label: "Duration", cell: function (t) { return t.endUnixMs ? V.duration(t.endUnixMs - t.startUnixMs) : "-"; } },
        { label: "Agents", num: true, cell: function (t) { return t.agents; } },
        { label: "Origin", cell: function (t) { return t.origin; } }
      ], tests.map(function (t) { return { data: t, attrs: { "data-test": t.id } }; })));
    // A click on a row shows that test's results.
    Array.prototype.forEach.call(document.querySelectorAll("#test-table tbody tr"), function (tr) {
      tr.style.cursor = "pointer";
      tr.addEventListener("click", function () { showPast(tr.getAttribute("data-test")); });
    });
  }

  function showPast(id) {
    shown = id;
    get("/v1/tests/" + encodeURIComponent(id) + "/summary").then(function (view) {
      var s = view.summary;
      var reqs = s.metrics.filter(function (m) { return m.name === "http_reqs" && m.tags.length === 0; })[0];
      var count = reqs && reqs.values.Counter ? reqs.values.Counter.count : 0;
      var parts = [
        V.el("p", null, [V.el("strong", { text: view.id + " " }),
          V.el("span", { className: "badge " + (view.passed ? "passed" : "failed"), text: view.passed ? "passed" : "failed" }),
          " " + count + " requests in " + V.duration(s.duration.secs * 1000 + s.duration.nanos / 1e6)]),
        V.table("past-thresholds", [
          { label: "", cell: function (t) { return { text: t.ok ? "✓" : "✗", className: t.ok ? "ok" : "bad" }; } },
          { label: "Threshold", cell: function (t) { return t.key + " " + t.source; } },
          { label: "Observed", num: true, cell: function (t) { return V.num(t.observed, 3); } }
        ], s.thresholds),
        V.table("past-breakdown", [
          { label: "By", cell: function (b) { return b.dimension; } },
          { label: "Name", cell: function (b) { return b.value; } },
          { label: "Requests", num: true, cell: function (b) { return b.requests; } },
          { label: "Failed", num: true, cell: function (b) { return b.failed; } },
          { label: "p95", num: true, cell: function (b) { return V.ms(b.p95Ms); } }
        ], s.breakdown),
        V.el("pre", { id: "past-text", text: view.text })
      ];
      V.fill("past", V.el("div", null, parts), true);
    }).catch(function (e) {
      V.fill("past", V.el("p", { className: "muted", text: "No results for " + id + " yet (" + e.message + ")." }), true);
    });
  }

  function tick() {
    Promise.all([get("/v1/members"), get("/v1/tests")]).then(function (answers) {
      members(answers[0].members);
      var tests = answers[1].tests;
      history(tests);
      var status = document.getElementById("status");
      status.textContent = "connected";
      status.className = "badge ok";
      var active = tests.filter(function (t) {
        return t.phase === "running" || t.phase === "starting" || t.phase === "pending";
      })[0];
      if (!active && running.id !== null) {
        // The charts keep the test that just ended; its results are below.
        V.fill("running", V.el("p", { className: "muted", text: "No test is running; " + running.id + " ended." }));
        if (shown === null || shown === running.id) { showPast(running.id); }
        running = { id: null, points: running.points };
      }
      if (!active && shown === null && tests.length > 0) { showPast(tests[0].id); }
      if (!active) { V.rendered(); return null; }
      return get("/v1/tests/" + encodeURIComponent(active.id)).then(function (view) { live(view); V.rendered(); });
    }).catch(function (e) {
      var status = document.getElementById("status");
      status.textContent = "cannot reach the API: " + e.message;
      status.className = "badge bad";
    }).then(function () { setTimeout(tick, PERIOD_MS); });
  }
  tick();
})();
