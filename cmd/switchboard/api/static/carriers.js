"use strict";
// The carriers view: each carrier with its breaker (shared and on this instance), priority,
// drain and restore; and the recent failovers and breaker changes.
(() => {
  const { api, cell, button, $ } = Console;
  let carriers = [];

  // put writes a carrier back with a change; secrets are write-only and left out, so the
  // server keeps the stored ones.
  async function put(c, change) {
    const cfg = Object.assign({}, c, change);
    delete cfg.has_auth_token; delete cfg.has_api_key;
    return api("PUT", "/api/admin/carriers/" + encodeURIComponent(c.id), cfg);
  }

  async function move(i, delta) {
    const j = i + delta;
    if (j < 0 || j >= carriers.length) return;
    const a = carriers[i], b = carriers[j];
    if (a.priority === b.priority) {
      await put(a, { priority: Math.max(0, a.priority + delta) });
    } else {
      await put(a, { priority: b.priority });
      await put(b, { priority: a.priority });
    }
  }

  const force = (c, state) => api("POST", "/api/admin/carriers/" + encodeURIComponent(c.id) + "/breaker", { state });

  function render(list, breakers) {
    const byId = Object.fromEntries(breakers.map((b) => [b.carrier, b]));
    const body = $("carriers");
    // Someone typing in a row (a priority) keeps the row: the next refresh after it shows news.
    if (body.contains(document.activeElement) && document.activeElement.tagName === "INPUT") return;
    body.replaceChildren();
    list.forEach((c, i) => {
      const b = byId[c.id] || {};
      const tr = document.createElement("tr");
      tr.dataset.testid = "carrier-row-" + c.id;
      cell(tr, c.id, "carrier-id");
      cell(tr, c.kind);
      const prio = document.createElement("input");
      prio.type = "number"; prio.min = 0; prio.value = c.priority; prio.dataset.testid = "priority-input-" + c.id;
      const pcell = cell(tr, prio);
      pcell.appendChild(button("save", "priority-save-" + c.id, () => put(c, { priority: Number(prio.value) })));
      cell(tr, String(c.weight));
      cell(tr, c.enabled ? "yes" : "no", "enabled-" + c.id);
      const st = document.createElement("span");
      st.className = "state " + (b.state || "");
      st.textContent = b.state || "?";
      st.title = b.reason || "";
      st.dataset.testid = "breaker-state-" + c.id;
      const sc = cell(tr, st);
      if (b.reason) { const r = document.createElement("div"); r.className = "muted"; r.textContent = b.reason; sc.appendChild(r); }
      cell(tr, b.force || "auto", "breaker-force-" + c.id);
      const w = b.window || {};
      cell(tr, (w.failures || 0) + " of " + (w.requests || 0) + ", " + (w.consecutive_failures || 0) + " in a row", "failures-" + c.id);
      const l = b.local || {};
      cell(tr, (l.state || "?") + ": " + (l.failures || 0) + " of " + (l.requests || 0), "breaker-local-" + c.id);
      const actions = cell(tr, "");
      const edit = document.createElement("button");
      edit.type = "button"; edit.textContent = "edit"; edit.dataset.testid = "edit-" + c.id;
      edit.addEventListener("click", () => CarrierForm.open(c, Console.refresh));
      actions.appendChild(edit);
      actions.appendChild(c.enabled ? button("disable", "disable-" + c.id, () => put(c, { enabled: false }))
        : button("enable", "enable-" + c.id, () => put(c, { enabled: true })));
      actions.appendChild(button("↑", "move-up-" + c.id, () => move(i, -1)));
      actions.appendChild(button("↓", "move-down-" + c.id, () => move(i, +1)));
      actions.appendChild(button("drain", "drain-" + c.id, () => force(c, "open")));
      actions.appendChild(button("restore", "restore-" + c.id, () => force(c, "auto")));
      body.appendChild(tr);
    });
  }

  function renderEvents(events) {
    const body = $("events");
    body.replaceChildren();
    for (const e of events) {
      const tr = document.createElement("tr");
      tr.dataset.testid = "event-" + e.kind;
      cell(tr, new Date(e.at).toLocaleTimeString());
      cell(tr, e.kind);
      cell(tr, e.carrier);
      cell(tr, e.next || "");
      cell(tr, e.call_id || "");
      cell(tr, e.detail || "");
      body.appendChild(tr);
    }
  }

  function renderAudit(entries) {
    const body = $("audit");
    body.replaceChildren();
    for (const a of entries) {
      const tr = document.createElement("tr");
      tr.dataset.testid = "audit-entry";
      tr.dataset.action = a.action;
      cell(tr, new Date(a.at).toLocaleString());
      cell(tr, a.actor);
      cell(tr, a.action);
      cell(tr, a.target);
      cell(tr, a.detail || "");
      body.appendChild(tr);
    }
  }

  // routeDryRun asks which carrier a call would take now, and why the others would not.
  async function routeDryRun(e) {
    e.preventDefault();
    const out = $("route-result");
    try {
      const r = await api("GET", "/api/admin/route?to=" + encodeURIComponent($("route-to").value.trim()));
      const lines = [r.carrier ? "→ " + r.carrier + ": " + r.reason : "no carrier: " + r.reason];
      if (r.candidates.length > 1) lines.push("then: " + r.candidates.slice(1).map((c) => c.carrier).join(", "));
      for (const s of r.skipped) lines.push("skipped " + s.carrier + ": " + s.reason);
      out.className = "muted";
      out.replaceChildren(...lines.map((l) => { const d = document.createElement("div"); d.textContent = l; return d; }));
      out.dataset.carrier = r.carrier;
    } catch (err) {
      out.className = "err";
      out.textContent = err.message;
      out.dataset.carrier = "";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("carrier-add").addEventListener("click", () => CarrierForm.open(null, Console.refresh));
    $("route-form").addEventListener("submit", routeDryRun);
  });

  Console.view("carriers", {
    async refresh() {
      const [cs, bs, ev, au] = await Promise.all([
        api("GET", "/api/admin/carriers"), api("GET", "/api/admin/breakers"), api("GET", "/api/admin/events?limit=20"),
        api("GET", "/api/admin/audit?limit=20"),
      ]);
      carriers = cs.carriers;
      render(carriers, bs.breakers);
      renderEvents(ev.events);
      renderAudit(au.entries);
    },
  });
})();
