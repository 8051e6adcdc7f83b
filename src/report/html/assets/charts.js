// Shared by the report, the live dashboard and the agent's /ui: error
// capture, DOM functions that only ever set text (never markup), number
// formatting and line charts drawn on <canvas>.
"use strict";
var V = (function () {
  var pageErrors = 0;
  function noteError(message) {
    pageErrors += 1;
    document.body.setAttribute("data-page-errors", String(pageErrors));
    var list = document.getElementById("page-errors");
    if (list) {
      var li = document.createElement("li");
      li.textContent = String(message);
      list.appendChild(li);
      list.hidden = false;
    }
  }
  window.addEventListener("error", function (e) { noteError("error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { noteError("rejection: " + e.reason); });
  var consoleError = console.error;
  console.error = function () {
    noteError("console: " + Array.prototype.join.call(arguments, " "));
    consoleError.apply(console, arguments);
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { node.textContent = attrs[k]; }
        else if (k === "className") { node.className = attrs[k]; }
        else if (attrs[k] !== undefined && attrs[k] !== null) { node.setAttribute(k, String(attrs[k])); }
      });
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function num(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) { return "-"; }
    var d = digits === undefined ? 2 : digits;
    // Counts in full (10,675), other values rounded (3557.05, 12.3k).
    if (Number.isInteger(v)) { return v.toLocaleString("en-US"); }
    if (Math.abs(v) >= 1e6) { return (v / 1e6).toFixed(d) + "M"; }
    if (Math.abs(v) >= 1e4) { return (v / 1e3).toFixed(d) + "k"; }
    return v.toFixed(d);
  }
  function ms(v) { return v === null || v === undefined ? "-" : num(v, 2) + " ms"; }
  function pct(v) { return v === null || v === undefined ? "-" : (v * 100).toFixed(2) + " %"; }
  function duration(msTotal) {
    var s = Math.round(msTotal / 100) / 10;
    if (s < 60) { return s + " s"; }
    var m = Math.floor(s / 60);
    var rest = Math.round((s - m * 60) * 10) / 10;
    if (m < 60) { return m + "m" + rest + "s"; }
    return Math.floor(m / 60) + "h" + (m % 60) + "m";
  }
  function time(unixMs) {
    if (!unixMs) { return "-"; }
    return new Date(unixMs).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  // A table: columns [{label, num, cell(row) -> text | {text, className, attrs}}].
  function table(id, columns, rows) {
    var head = el("tr", null, columns.map(function (c) {
      return el("th", { className: c.num ? "num" : "", text: c.label });
    }));
    var body = rows.map(function (row) {
      var tr = el("tr", row.attrs || null);
      columns.forEach(function (c) {
        var v = c.cell(row.data || row);
        var cell = typeof v === "object" && v !== null ? v : { text: v };
        var attrs = Object.assign({}, cell.attrs || {});
        attrs.text = cell.text === undefined ? "" : String(cell.text);
        attrs.className = (c.num ? "num " : "") + (cell.className || "");
        tr.appendChild(el("td", attrs));
      });
      return tr;
    });
    return el("table", { id: id }, [el("thead", null, [head]), el("tbody", null, body)]);
  }

  function fill(sectionId, node, show) {
    var section = document.getElementById(sectionId);
    if (!section) { return; }
    var body = section.querySelector(".body");
    body.replaceChildren(node);
    if (show !== undefined) { section.hidden = !show; }
  }

  var PALETTE = ["#2f6fde", "#e8590c", "#2b8a3e", "#862e9c", "#c2255c", "#0b7285", "#5c940d", "#a61e4d"];

  // Draws series [{label, color, points: [[x, y], ...]}] as lines on a
  // canvas; x in milliseconds since the start. Returns the number of
  // points drawn.
  function lineChart(canvas, series, opts) {
    opts = opts || {};
    // A series without a single value (vus_max on /ui) gets no legend.
    series = series.filter(function (s) {
      return s.points.some(function (p) { return p[1] !== null && p[1] !== undefined && isFinite(p[1]); });
    });
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 600;
    var height = canvas.clientHeight || 220;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    var g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    var left = 56, right = 12, top = 22, bottom = 26;
    var plotW = Math.max(10, width - left - right);
    var plotH = Math.max(10, height - top - bottom);
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (p[1] !== null && p[1] !== undefined && isFinite(p[1])) { xs.push(p[0]); ys.push(p[1]); }
      });
    });
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#667085";
    if (xs.length === 0) {
      g.fillText("no data yet", left + 8, top + plotH / 2);
      canvas.setAttribute("data-points", "0");
      return 0;
    }
    var xMin = Math.min.apply(null, xs.concat([0]));
    var xMax = Math.max.apply(null, xs);
    if (xMax <= xMin) { xMax = xMin + 1000; }
    var yMax = Math.max.apply(null, ys);
    yMax = yMax <= 0 ? 1 : niceCeil(yMax * 1.05);
    function X(x) { return left + (x - xMin) / (xMax - xMin) * plotW; }
    function Y(y) { return top + plotH - y / yMax * plotH; }
    g.strokeStyle = "#e4e7ec";
    g.lineWidth = 1;
    for (var i = 0; i <= 4; i++) {
      var yv = yMax * i / 4;
      g.beginPath(); g.moveTo(left, Y(yv)); g.lineTo(left + plotW, Y(yv)); g.stroke();
      g.fillText(num(yv, 1), 4, Y(yv) + 4);
    }
    for (var j = 0; j <= 4; j++) {
      var xv = xMin + (xMax - xMin) * j / 4;
      g.fillText(duration(xv), X(xv) - 14, top + plotH + 16);
    }
    var drawn = 0;
    var legendX = left;
    series.forEach(function (s, k) {
      var color = s.color || PALETTE[k % PALETTE.length];
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      var pen = false;
      s.points.forEach(function (p) {
        if (p[1] === null || p[1] === undefined || !isFinite(p[1])) { pen = false; return; }
        if (pen) { g.lineTo(X(p[0]), Y(p[1])); } else { g.moveTo(X(p[0]), Y(p[1])); pen = true; }
        drawn += 1;
      });
      g.stroke();
      if (s.points.length === 1 && isFinite(s.points[0][1])) {
        g.fillStyle = color;
        g.fillRect(X(s.points[0][0]) - 2, Y(s.points[0][1]) - 2, 4, 4);
      }
      g.fillStyle = color;
      g.fillRect(legendX, 6, 10, 10);
      g.fillStyle = "#1d2433";
      g.fillText(s.label, legendX + 14, 15);
      legendX += 24 + g.measureText(s.label).width;
    });
    canvas.setAttribute("data-points", String(drawn));
    // Where the plot area is on the page, for tests that look at pixels.
    var rect = canvas.getBoundingClientRect();
    canvas.setAttribute("data-box", [Math.round(rect.left + window.scrollX + left),
      Math.round(rect.top + window.scrollY + top), Math.round(plotW), Math.round(plotH + 2)].join(","));
    return drawn;
  }
  function niceCeil(v) {
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) { if (steps[i] * p >= v) { return steps[i] * p; } }
    return 10 * p;
  }

  // The four charts of a test from points {tMs, rps, vus, vusMax, p50Ms,
  // p95Ms, p99Ms, failedRate, scenarioRps}.
  function testCharts(points, scenarios) {
    var pick = function (f) { return points.map(function (p) { return [p.tMs, f(p)]; }); };
    var rps = [{ label: "req/s", points: pick(function (p) { return p.rps; }) }];
    if (scenarios && scenarios.length > 1) {
      scenarios.forEach(function (name, i) {
        rps.push({ label: name, points: pick(function (p) { return p.scenarioRps ? p.scenarioRps[i] : null; }) });
      });
    }
    lineChart(document.getElementById("chart-rps"), rps);
    lineChart(document.getElementById("chart-vus"), [
      { label: "vus", points: pick(function (p) { return p.vus; }) },
      { label: "vus_max", points: pick(function (p) { return p.vusMax; }) }
    ]);
    lineChart(document.getElementById("chart-latency"), [
      { label: "p50", points: pick(function (p) { return p.p50Ms; }) },
      { label: "p95", points: pick(function (p) { return p.p95Ms; }) },
      { label: "p99", points: pick(function (p) { return p.p99Ms; }) }
    ]);
    lineChart(document.getElementById("chart-errors"), [
      { label: "failed %", color: "#c62828", points: pick(function (p) {
        return p.failedRate === null || p.failedRate === undefined ? null : p.failedRate * 100;
      }) }
    ]);
  }

  function rendered() {
    var n = Number(document.body.getAttribute("data-rendered") || "0") + 1;
    document.body.setAttribute("data-rendered", String(n));
  }

  return { el: el, num: num, ms: ms, pct: pct, duration: duration, time: time, table: table,
    fill: fill, lineChart: lineChart, testCharts: testCharts, rendered: rendered, noteError: noteError };
})();
