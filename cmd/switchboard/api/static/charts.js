"use strict";
// The charts view: the last hour from GET /api/admin/stats, drawn as plain SVG (no library):
// callbacks per second for each carrier with a line per outcome, calls in progress,
// failovers, and each breaker's states as a band. Every mark is an element with data
// attributes, so a test (or a screen reader, through the titles) can read what is drawn.
(() => {
  const { api, $ } = Console;
  const NS = "http://www.w3.org/2000/svg";
  const H = 150, L = 44, R = 8, T = 8, B = 22; // height and margins, in CSS pixels
  // W is the width of the chart being drawn: its box's, so one unit of the viewBox is one
  // pixel and the text keeps its size at 1280 px and at 390 px alike.
  let W = 720;
  const fit = (box) => { W = Math.max(280, Math.round(box.clientWidth || 720)); };

  // One colour per outcome, the console's palette; others fall back to grey.
  const outcomeColour = {
    stored: "#138a4b", duplicate: "#2b59c3", stale: "#6b7385", rejected: "#c62d2d",
    error: "#7a1010", foreign: "#b26a00", orphan: "#8a3ab9",
  };
  const breakerColour = {
    closed: "#dff3e7", open: "#f4b4b4", "half-open": "#fbdca6", "forced-open": "#c62d2d",
    "forced-closed": "#138a4b", auto: "#e1e4ea", unknown: "#f4f5f7",
  };

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }
  function title(parent, text) { el("title", {}, parent).textContent = text; }

  // frame draws an empty chart with a time axis and a value axis up to max.
  function frame(w, max, label) {
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart" });
    title(svg, label);
    const y0 = H - B;
    el("line", { x1: L, y1: y0, x2: W - R, y2: y0, class: "axis" }, svg);
    el("line", { x1: L, y1: T, x2: L, y2: y0, class: "axis" }, svg);
    for (const frac of [0.5, 1]) {
      const y = y0 - frac * (y0 - T);
      el("line", { x1: L, y1: y, x2: W - R, y2: y, class: "grid" }, svg);
      const t = el("text", { x: L - 4, y: y + 4, class: "tick", "text-anchor": "end" }, svg);
      t.textContent = fmt(max * frac);
    }
    const start = Date.parse(w.start), span = w.buckets * w.step_s * 1000;
    const n = W < 500 ? 2 : 4; // time labels that fit side by side
    for (let i = 0; i <= n; i++) {
      const t = el("text", { x: L + i / n * (W - L - R), y: H - 6, class: "tick", "text-anchor": i === 0 ? "start" : i === n ? "end" : "middle" }, svg);
      t.textContent = new Date(start + i / n * span).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
    return svg;
  }
  const fmt = (v) => v >= 10 ? String(Math.round(v)) : v >= 1 ? v.toFixed(1) : v.toFixed(2);
  const xOf = (w, i) => L + (i + 0.5) / w.buckets * (W - L - R);
  const yOf = (v, max) => (H - B) - (max > 0 ? v / max : 0) * (H - B - T);
  // niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
  }

  function line(svg, w, values, max, attrs, label) {
    const pts = [];
    values.forEach((v, i) => { if (v !== null && v !== undefined) pts.push(xOf(w, i).toFixed(1) + "," + yOf(v, max).toFixed(1)); });
    const p = el("polyline", Object.assign({ points: pts.join(" "), fill: "none", "stroke-width": 1.6 }, attrs), svg);
    title(p, label);
    return p;
  }

  function legend(parent, items) {
    const ul = document.createElement("ul");
    ul.className = "legend";
    for (const [name, colour] of items) {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      // An SVG swatch: the console's CSP allows no style attributes, and SVG fills are not styles.
      const svg = el("svg", { viewBox: "0 0 10 10", width: 10, height: 10 });
      el("rect", { width: 10, height: 10, rx: 2, fill: colour }, svg);
      sw.appendChild(svg);
      li.append(sw, " " + name);
      ul.appendChild(li);
    }
    parent.appendChild(ul);
  }

  // Callbacks: a small chart per carrier, a line per outcome, all on one scale so carriers
  // compare at a glance.
  function drawCallbacks(w) {
    const box = $("chart-callbacks");
    box.replaceChildren();
    const byCarrier = new Map();
    for (const s of w.callbacks) {
      if (!byCarrier.has(s.carrier)) byCarrier.set(s.carrier, []);
      byCarrier.get(s.carrier).push(s);
    }
    if (!byCarrier.size) { empty(box, "no carrier callbacks in this window"); return; }
    const max = niceMax(Math.max(...w.callbacks.flatMap((s) => s.values)));
    for (const [carrier, series] of byCarrier) {
      const fig = document.createElement("figure");
      fig.dataset.carrier = carrier;
      box.appendChild(fig);
      fit(fig);
      const cap = document.createElement("figcaption");
      const total = series.reduce((n, s) => n + s.values.reduce((a, v) => a + v * w.step_s, 0), 0);
      cap.textContent = carrier + " · " + Math.round(total) + " callbacks";
      fig.appendChild(cap);
      const svg = frame(w, max, "callbacks per second from " + carrier);
      for (const s of series) {
        const peak = Math.max(...s.values);
        const p = line(svg, w, s.values, max, { stroke: outcomeColour[s.outcome] || "#6b7385" },
          carrier + " " + s.outcome + ": up to " + fmt(peak) + "/s");
        p.dataset.carrier = carrier;
        p.dataset.outcome = s.outcome;
        p.dataset.peak = String(peak);
        p.dataset.points = String(s.values.filter((v) => v > 0).length);
      }
      fig.appendChild(svg);
      legend(fig, series.map((s) => [s.outcome, outcomeColour[s.outcome] || "#6b7385"]));
    }
  }

  function drawInProgress(w) {
    const box = $("chart-in-progress");
    box.replaceChildren();
    const vals = w.in_progress;
    if (!vals.some((v) => v !== null)) { empty(box, "no instance sampled in this window"); return; }
    const max = niceMax(Math.max(1, ...vals.filter((v) => v !== null)));
    fit(box);
    const last = [...vals].reverse().find((v) => v !== null);
    const now = document.createElement("p");
    now.className = "muted";
    now.dataset.testid = "in-progress-now";
    now.textContent = "now " + last;
    box.appendChild(now);
    const svg = frame(w, max, "calls in progress");
    const p = line(svg, w, vals, max, { stroke: "#2b59c3" }, "calls in progress: now " + (vals[vals.length - 1] ?? "?"));
    p.dataset.series = "in-progress";
    box.appendChild(svg);
  }

  function drawFailovers(w) {
    const box = $("chart-failovers");
    box.replaceChildren();
    if (!w.failovers.length) { empty(box, "no failovers in this window"); return; }
    const totals = w.failovers[0].values.map((_, i) => w.failovers.reduce((n, s) => n + s.values[i], 0));
    const max = niceMax(Math.max(...totals));
    fit(box);
    const svg = frame(w, max, "failovers per 10 seconds");
    const bw = Math.max(1, (W - L - R) / w.buckets - 1);
    const palette = ["#c62d2d", "#b26a00", "#8a3ab9", "#2b59c3"];
    const base = new Array(w.buckets).fill(0);
    w.failovers.forEach((s, k) => {
      s.values.forEach((v, i) => {
        if (!v) return;
        const y1 = yOf(base[i] + v, max), y0 = yOf(base[i], max);
        const r = el("rect", { x: xOf(w, i) - bw / 2, y: y1, width: bw, height: y0 - y1, fill: palette[k % palette.length] }, svg);
        r.dataset.carrier = s.carrier;
        title(r, v + " failover" + (v === 1 ? "" : "s") + " off " + s.carrier);
        base[i] += v;
      });
    });
    box.appendChild(svg);
    legend(box, w.failovers.map((s, k) => [s.carrier, palette[k % palette.length]]));
  }

  // Breakers: a band per carrier, each stretch coloured by the state it was in. Before its
  // first change in the window the state is not known, unless there was no change at all:
  // then it is the state now.
  function drawBreakers(w) {
    const box = $("chart-breakers");
    box.replaceChildren();
    const now = new Map(w.breakers_now.map((b) => [b.carrier, b]));
    const lines = new Map(w.breakers.map((b) => [b.carrier, b.changes]));
    for (const c of now.keys()) if (!lines.has(c)) lines.set(c, []);
    if (!lines.size) { empty(box, "no carriers"); return; }
    fit(box);
    const rowH = 22, stride = rowH + 18, h = lines.size * stride + 4;
    const svg = el("svg", { viewBox: `0 0 ${W} ${h}`, role: "img", class: "chart" });
    title(svg, "breaker states");
    const start = Date.parse(w.start), span = w.buckets * w.step_s * 1000;
    const x = (t) => L + 40 + Math.min(1, Math.max(0, (t - start) / span)) * (W - L - 40 - R);
    let row = 0;
    for (const [carrier, changes] of lines) {
      const y = row * stride + 4;
      const name = el("text", { x: 0, y: y + 15, class: "tick" }, svg);
      name.textContent = carrier;
      const b = now.get(carrier);
      const stretches = [];
      let from = start, state = changes.length ? "unknown" : (b ? (b.force !== "auto" ? "forced-" + b.force : b.state) : "unknown");
      for (const ch of changes) {
        stretches.push([from, Date.parse(ch.at), state]);
        from = Date.parse(ch.at);
        state = ch.state;
      }
      stretches.push([from, start + span, state]);
      const ends = el("text", { x: W - R, y: y + rowH + 12, class: "tick", "text-anchor": "end" }, svg);
      ends.textContent = "now " + state;
      for (const [a, z, s] of stretches) {
        if (z <= a) continue;
        const r = el("rect", { x: x(a), y, width: Math.max(1, x(z) - x(a)), height: rowH, fill: breakerColour[s] || "#e1e4ea" }, svg);
        r.dataset.carrier = carrier;
        r.dataset.state = s;
        title(r, carrier + ": " + s + " from " + new Date(a).toLocaleTimeString());
      }
      row++;
    }
    box.appendChild(svg);
    legend(box, Object.entries(breakerColour).map(([k, v]) => [k, v]));
  }

  function empty(box, text) {
    const p = document.createElement("p");
    p.className = "muted";
    p.dataset.testid = "chart-empty";
    p.textContent = text;
    box.appendChild(p);
  }

  let last = null; // the figures drawn, redrawn at the new width when the window resizes
  function draw(w) {
    last = w;
    drawCallbacks(w);
    drawInProgress(w);
    drawFailovers(w);
    drawBreakers(w);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("chart-window").addEventListener("change", () => Console.refresh());
    let pending = 0;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => { if (last && !$("chart-callbacks").closest("section").hidden) draw(last); }, 100);
    });
  });

  Console.view("charts", {
    every: 5000,
    async refresh() {
      draw(await api("GET", "/api/admin/stats?window=" + encodeURIComponent($("chart-window").value)));
    },
  });
})();
