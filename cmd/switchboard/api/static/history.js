"use strict";
// The history view: search the call-detail records, export what the search selects (CSV or
// JSON, fetched with the token and saved from a Blob, since a plain link cannot carry the
// Authorization header), and a call's page: its facts, the carriers tried, and every entry
// of its history with where it came from.
(() => {
  const { api, cell, $ } = Console;
  const shown = 100; // rows in the table; an export has them all

  // The search as a query string, from the form. Times are the browser's local time.
  function query() {
    const f = new FormData($("cdr-search"));
    const q = new URLSearchParams();
    for (const [k, v] of f.entries()) {
      const s = String(v).trim();
      if (!s) continue;
      q.set(k, (k === "from" || k === "to") ? new Date(s).toISOString() : s);
    }
    return q;
  }

  const when = (t) => t ? new Date(t).toLocaleString() : "";
  function duration(r) {
    if (!r.created_at || !r.ended_at) return "";
    const s = Math.max(0, Math.round((Date.parse(r.ended_at) - Date.parse(r.created_at)) / 1000));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }
  function pill(state) {
    const p = document.createElement("span");
    p.className = "pill";
    p.dataset.state = state;
    p.textContent = state;
    return p;
  }

  let openCall = ""; // the call whose page is shown, "" for the list

  const fmtMS = (ms) => { const s = Math.round(ms / 1000); return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); };

  // download fetches path with the token and saves it as name.
  async function download(path, name) {
    const res = await fetch(path, { headers: { "Authorization": "Bearer " + Console.token() } });
    if (!res.ok) throw new Error("download failed: HTTP " + res.status);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(await res.blob());
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  }

  async function search() {
    const q = query();
    q.set("order", "desc");
    q.set("limit", String(shown));
    const rows = await api("GET", "/api/admin/cdr?" + q.toString());
    const body = $("cdr-rows");
    body.replaceChildren();
    for (const r of rows) {
      const tr = document.createElement("tr");
      tr.className = "link";
      tr.tabIndex = 0;
      tr.dataset.testid = "cdr-row";
      tr.dataset.call = r.call_id;
      tr.dataset.state = r.state;
      cell(tr, when(r.recorded_at));
      cell(tr, pill(r.state));
      cell(tr, r.direction);
      cell(tr, r.from);
      cell(tr, r.to);
      cell(tr, r.agent || "");
      cell(tr, r.carrier || "");
      cell(tr, duration(r));
      cell(tr, [r.disposition, r.notes].filter(Boolean).join(" · "));
      const open = () => showCall(r);
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      body.appendChild(tr);
    }
    $("cdr-summary").textContent = rows.length === shown
      ? "the newest " + shown + " matching calls (export for all of them)"
      : rows.length + " matching call" + (rows.length === 1 ? "" : "s");
  }

  // exportAs downloads everything the search selects. The answer is read whole into a Blob:
  // the browser keeps it, not the page's script, and the server streams it.
  async function exportAs(format) {
    const q = query();
    q.set("format", format);
    const out = $("cdr-export-result");
    out.classList.remove("err");
    out.textContent = "exporting…";
    const res = await fetch("/api/admin/cdr?" + q.toString(), { headers: { "Authorization": "Bearer " + Console.token() } });
    if (!res.ok) {
      let msg = "HTTP " + res.status;
      try { msg = (await res.json()).error.message; } catch (_) { /* not the API's error shape */ }
      out.classList.add("err");
      out.textContent = "export failed: " + msg;
      return;
    }
    out.classList.remove("err");
    const blob = await res.blob();
    const text = format === "csv" ? await blob.slice(0, 4096).text() : "";
    const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || "cdr." + format;
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    out.dataset.format = format;
    out.dataset.bytes = String(blob.size);
    out.dataset.file = name;
    out.dataset.type = blob.type;
    if (format === "csv") out.dataset.header = text.split("\r\n")[0];
    out.textContent = "saved " + name + " (" + (blob.size / 1024).toFixed(1) + " KiB)";
  }

  function fact(dl, name, value, testid) {
    if (value === undefined || value === null || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = value;
    if (testid) dd.dataset.testid = testid;
    dl.append(dt, dd);
  }

  const sources = {
    callback: "carrier callback", api: "carrier's answer to our request", reconciled: "reconciler (asked the carrier)",
    switchboard: "Switchboard", agent: "agent", "": "unrecorded",
  };

  // showCall opens a call's page: the live record (with its history) while Redis keeps it,
  // otherwise what the call-detail record says.
  async function showCall(r) {
    openCall = r.call_id;
    $("call-page").hidden = false;
    $("call-page").previousElementSibling.hidden = true;
    $("call-id").textContent = r.call_id;
    let c = null;
    try {
      c = await api("GET", "/api/calls/" + encodeURIComponent(r.call_id));
      $("call-note").textContent = "";
    } catch (e) {
      if (e.status !== 404) throw e;
      $("call-note").textContent = "The call's full record has expired (kept for the retention period); this is its call-detail record.";
    }
    if (openCall !== r.call_id) return; // another call was opened meanwhile
    const rec = c || {};
    const dl = $("call-facts");
    dl.replaceChildren();
    fact(dl, "state", pill(rec.state || r.state), "call-state");
    fact(dl, "direction", rec.direction || r.direction);
    fact(dl, "from", rec.from || r.from);
    fact(dl, "to", rec.to || r.to);
    fact(dl, "agent", rec.agent || r.agent, "call-agent");
    fact(dl, "carrier", rec.carrier || r.carrier);
    fact(dl, "carrier call id", rec.carrier_call_id || r.carrier_call_id);
    fact(dl, "started", when(rec.created_at || r.created_at));
    fact(dl, "ended", when(r.ended_at));
    fact(dl, "duration", duration(r));
    if (r.corrects) fact(dl, "corrects", "an earlier record that ended it " + r.corrects);
    // Wrap-up and recording, when the record has them.
    fact(dl, "disposition", rec.disposition || r.disposition, "call-disposition");
    fact(dl, "notes", rec.notes || r.notes, "call-notes");
    // The recording: a download per part (fetched with the token, saved from a Blob; the
    // console's policy plays no media itself).
    if (rec.recording && rec.recording.parts && rec.recording.parts.length) {
      const span = document.createElement("span");
      span.textContent = fmtMS(rec.recording.duration_ms) + " ";
      rec.recording.parts.forEach((_, i) => {
        const b = document.createElement("button");
        b.type = "button";
        b.dataset.testid = "call-recording-download";
        b.dataset.part = String(i);
        b.textContent = rec.recording.parts.length > 1 ? "download part " + (i + 1) : "download (WAV)";
        b.addEventListener("click", () => download("/api/calls/" + encodeURIComponent(r.call_id) + "/recording?part=" + i,
          r.call_id + (i ? "-" + i : "") + ".wav").catch((e) => Console.say(e.message, true)));
        span.appendChild(b);
      });
      fact(dl, "recording", span, "call-recording");
    }

    const attempts = (c && c.attempts && c.attempts.length ? c.attempts : r.attempts) || [];
    const ab = $("call-attempts");
    ab.replaceChildren();
    attempts.forEach((a, i) => {
      const tr = document.createElement("tr");
      tr.dataset.testid = "call-attempt";
      tr.dataset.carrier = a.carrier;
      cell(tr, String(i + 1));
      cell(tr, a.carrier);
      cell(tr, a.detail);
      ab.appendChild(tr);
    });
    if (!attempts.length) {
      const tr = document.createElement("tr");
      cell(tr, "").colSpan = 3;
      tr.firstChild.textContent = rec.direction === "inbound" || r.direction === "inbound" ? "an inbound call: no carrier to choose" : "none recorded";
      ab.appendChild(tr);
    }

    const tl = $("call-timeline");
    tl.replaceChildren();
    const history = ((c && c.history) || []).slice().sort((a, b) => Date.parse(a.received_at) - Date.parse(b.received_at));
    for (const h of history) {
      const li = document.createElement("li");
      li.dataset.testid = "timeline-entry";
      li.dataset.source = h.source || "";
      li.dataset.state = h.state || "";
      const t = document.createElement("time");
      t.dateTime = h.received_at;
      t.textContent = new Date(h.received_at).toLocaleTimeString();
      const what = document.createElement("span");
      what.textContent = (h.state ? h.state + (h.changed ? "" : " (no change)") : "note") +
        (h.carrier ? " · " + h.carrier : "") + (h.detail ? " · " + h.detail : "");
      const src = document.createElement("span");
      src.className = "src";
      src.dataset.testid = "timeline-source";
      src.textContent = sources[h.source || ""] || h.source;
      li.append(t, " ", what, " ", src);
      tl.appendChild(li);
    }
    if (!history.length) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = "no history kept";
      tl.appendChild(li);
    }
  }

  function backToList() {
    openCall = "";
    $("call-page").hidden = true;
    $("call-page").previousElementSibling.hidden = false;
    Console.refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("cdr-search").addEventListener("submit", (e) => {
      e.preventDefault();
      if (openCall) backToList(); else Console.refresh();
    });
    for (const b of document.querySelectorAll('[data-testid="cdr-export"]')) {
      b.addEventListener("click", async () => {
        b.disabled = true;
        try { await exportAs(b.dataset.format); } catch (e) {
          $("cdr-export-result").classList.add("err");
          $("cdr-export-result").textContent = "export failed: " + e.message;
        } finally { b.disabled = false; }
      });
    }
    $("call-back").addEventListener("click", backToList);
  });

  // The list refreshes while it is shown; a call's page stays as opened.
  Console.view("history", {
    every: 5000,
    async refresh() { if (!openCall) await search(); },
  });
})();
