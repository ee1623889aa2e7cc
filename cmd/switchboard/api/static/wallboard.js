"use strict";
// The wallboard view: agents and their states, the callers waiting, live calls (with
// hang-up) and the carriers' health, live through one server-sent-events stream. An
// EventSource cannot send the token, so the view first trades it for a single-use ticket
// (POST /api/wallboard/ticket) and opens the stream with that; when the stream ends it asks
// for a new ticket. The server sends a floor only when something changed, with times of when
// each state began; this view counts the seconds itself, on the server's clock.
(() => {
  const { api, say, cell, button, $ } = Console;
  let es = null;          // the EventSource while the view is shown
  let running = false;    // between start and stop
  let retryTimer = 0, tickTimer = 0, delay = 1000;
  let offset = 0;         // server clock minus this browser's, from the last floor
  let lastFloor = null;

  const serverNow = () => Date.now() + offset;

  // duration formats milliseconds as m:ss, or h:mm:ss past an hour.
  function duration(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h > 0 ? h + ":" + pad(m) + ":" + pad(r) : m + ":" + pad(r);
  }

  // since makes a cell that counts up from an absolute time; the ticker keeps it current.
  function since(row, iso, testid) {
    const td = cell(row, iso ? duration(serverNow() - Date.parse(iso)) : "—", testid);
    if (iso) td.dataset.since = iso;
    return td;
  }

  function tick() {
    for (const td of document.querySelectorAll("[data-view=wallboard] [data-since]")) {
      td.textContent = duration(serverNow() - Date.parse(td.dataset.since));
    }
  }

  // wide marks a cell that a narrow screen leaves out (console.css), so the rest fits.
  function wide(td) { td.classList.add("wide"); return td; }

  function pill(state) {
    const s = document.createElement("span");
    s.className = "pill";
    s.dataset.state = state;
    s.textContent = state;
    return s;
  }

  function render(f) {
    const agents = $("wb-agents");
    agents.replaceChildren();
    let available = 0;
    for (const a of f.agents) {
      if (a.state === "available") available++;
      const tr = document.createElement("tr");
      tr.dataset.testid = "agent-row";
      tr.dataset.agent = a.id;
      tr.dataset.state = a.state;
      cell(tr, a.name === a.id ? a.id : a.name + " (" + a.id + ")");
      wide(cell(tr, a.role));
      cell(tr, pill(a.state));
      since(tr, a.since);
      cell(tr, a.call || (a.ringing ? "ringing: " + a.ringing : ""));
      agents.appendChild(tr);
    }

    const q = f.queue;
    $("wb-waiting").textContent = String(q.waiting);
    const longest = $("wb-longest");
    if (q.longest_since) {
      longest.dataset.since = q.longest_since;
      longest.textContent = duration(serverNow() - Date.parse(q.longest_since));
    } else {
      delete longest.dataset.since;
      longest.textContent = "—";
    }
    const queue = $("wb-queue");
    queue.replaceChildren();
    for (const w of q.calls) {
      const tr = document.createElement("tr");
      tr.dataset.testid = "queue-row";
      tr.dataset.call = w.call;
      tr.dataset.state = w.state;
      cell(tr, w.from);
      wide(cell(tr, w.to));
      wide(cell(tr, w.carrier || ""));
      const st = cell(tr, pill(w.state));
      if (w.agent) st.append(" " + w.agent);
      since(tr, w.since);
      queue.appendChild(tr);
    }

    $("wb-live").textContent = String(f.calls.length);
    $("wb-available").textContent = String(available);
    const calls = $("wb-calls");
    calls.replaceChildren();
    const onCalls = new Set(f.agents.filter((a) => a.state === "busy" && a.call).map((a) => a.call));
    for (const c of f.calls) {
      const tr = document.createElement("tr");
      tr.dataset.testid = "live-call-row";
      tr.dataset.call = c.id;
      tr.dataset.state = c.state;
      wide(cell(tr, c.direction));
      cell(tr, c.number);
      cell(tr, c.agent || "");
      wide(cell(tr, c.carrier || ""));
      wide(cell(tr, pill(c.state)));
      since(tr, c.since);
      const b = button("hang up", "live-call-hangup", () => api("POST", "/api/calls/" + encodeURIComponent(c.id) + "/hangup"));
      b.className = "bad";
      const td = cell(tr, b);
      // Monitoring (monitor.js) needs the call answered: an agent busy on it. (An inbound
      // call's record may read ringing all along: carriers report its answer late or never.)
      const mon = document.createElement("button");
      mon.type = "button";
      mon.textContent = "listen";
      mon.dataset.testid = "live-call-monitor";
      mon.disabled = !onCalls.has(c.id);
      mon.addEventListener("click", () => ConsoleMonitor.start(c.id, c.number + (c.agent ? " · " + c.agent : "")));
      td.prepend(mon);
      calls.appendChild(tr);
    }

    const carriers = $("wb-carriers");
    carriers.replaceChildren();
    for (const c of f.carriers) {
      const tr = document.createElement("tr");
      tr.dataset.testid = "carrier-health-row";
      tr.dataset.carrier = c.id;
      cell(tr, c.id + (c.enabled ? "" : " (disabled)"));
      const shared = document.createElement("span");
      shared.className = "state " + c.breaker;
      shared.textContent = c.breaker + (c.forced && c.forced !== "auto" ? " (forced)" : "");
      cell(tr, shared);
      const local = document.createElement("span");
      local.className = "state " + c.local;
      local.textContent = c.local + (c.local_failures ? ", " + c.local_failures + " failures" : "");
      cell(tr, local);
      cell(tr, c.failures + " of " + c.requests);
      cell(tr, c.callbacks_per_s == null ? "—" : c.callbacks_per_s.toFixed(1), "callbacks-" + c.id);
      carriers.appendChild(tr);
    }
  }

  // storage shows or hides the banner that says the floor on screen may be old.
  function storage(ok, message) {
    const banner = $("wb-storage");
    banner.hidden = ok;
    banner.textContent = ok ? "" : (message || "storage unavailable — showing the last known state");
    document.querySelector("[data-view=wallboard]").dataset.storage = ok ? "ok" : "down";
    if (!ok) say(banner.textContent, true);
  }

  function close() {
    if (es) { es.close(); es = null; }
  }

  function retry() {
    close();
    if (!running) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 5000);
  }

  async function connect() {
    if (!running) return;
    let ticket;
    try {
      ticket = await api("POST", "/api/wallboard/ticket");
    } catch (e) {
      if (e.status === 503) storage(false); else say(e.message, true);
      retry();
      return;
    }
    if (!running) return;
    close();
    es = new EventSource(ticket.url);
    es.addEventListener("floor", (ev) => {
      const msg = JSON.parse(ev.data);
      offset = msg.at - Date.now();
      lastFloor = msg.floor;
      render(msg.floor);
      // A floor was read from storage just now (an old one is followed by a storage event).
      if (!$("wb-storage").hidden) storage(true);
      delay = 1000;
      if ($("wb-storage").hidden) say("live · updated " + new Date().toLocaleTimeString());
    });
    es.addEventListener("storage", (ev) => {
      const msg = JSON.parse(ev.data);
      storage(msg.ok, msg.message);
      if (msg.ok) say("live · storage is back");
    });
    es.addEventListener("bye", (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.reason === "revoked") { say("this token may no longer watch the wallboard", true); close(); return; }
      retry();
    });
    es.onerror = () => retry(); // the stream ended or never opened: a new ticket, after a pause
  }

  Console.view("wallboard", {
    start() {
      running = true;
      delay = 1000;
      if (lastFloor) render(lastFloor);
      clearInterval(tickTimer);
      tickTimer = setInterval(tick, 1000);
      connect();
    },
    stop() {
      running = false;
      clearTimeout(retryTimer);
      clearInterval(tickTimer);
      close();
    },
  });
})();
