"use strict";
// The carrier form: add a carrier or edit every field of one. The server validates (every
// field error at once); each error is shown beside its field. Secrets are write-only: the
// form never shows them, and an empty secret field keeps the stored one.
const CarrierForm = (() => {
  const { api, $ } = Console;

  // Every field of a carrier, as named in the API's JSON (and in its field errors).
  const spec = [
    { name: "id", label: "Id", hint: "a-z, 0-9 and -; part of the carrier's webhook URLs", createOnly: true },
    { name: "kind", label: "Kind", options: ["twilio", "telnyx"] },
    { name: "from", label: "Caller id", hint: "E.164, e.g. +15551234567" },
    { name: "enabled", label: "Enabled", type: "checkbox" },
    { name: "priority", label: "Priority", type: "number", hint: "lower is tried first" },
    { name: "weight", label: "Weight", type: "number", hint: "share within a priority; default 1" },
    { name: "account_sid", label: "Account SID", kind: "twilio" },
    { name: "auth_token", label: "Auth token", kind: "twilio", secret: "has_auth_token" },
    { name: "api_key", label: "API key", kind: "telnyx", secret: "has_api_key" },
    { name: "connection_id", label: "Connection id", kind: "telnyx" },
    { name: "public_key", label: "Webhook public key", kind: "telnyx", hint: "base64 Ed25519 key" },
    { name: "api_url", label: "REST API URL", hint: "empty: the carrier's public API" },
    { name: "allow_insecure_api_url", label: "Allow plain http API URL", type: "checkbox" },
    { name: "request_timeout", label: "Request timeout", duration: true, hint: "e.g. 2s; empty: default" },
    { name: "breaker.failure_threshold", label: "Breaker: failures in a row", type: "number" },
    { name: "breaker.failure_ratio", label: "Breaker: failure ratio", type: "number", step: "0.01" },
    { name: "breaker.min_requests", label: "Breaker: min requests", type: "number" },
    { name: "breaker.window", label: "Breaker: window", duration: true },
    { name: "breaker.bucket_period", label: "Breaker: bucket period", duration: true },
    { name: "breaker.open_timeout", label: "Breaker: open for", duration: true },
    { name: "breaker.callback_deadline", label: "Breaker: callback deadline", duration: true },
  ];

  let editing = null; // the carrier being edited, or null for a new one
  let onSaved = () => {};
  const inputs = {};

  const get = (obj, name) => name.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  function set(obj, name, value) {
    const keys = name.split(".");
    const last = keys.pop();
    const target = keys.reduce((o, k) => (o[k] = o[k] || {}), obj);
    target[last] = value;
  }

  function build() {
    const box = $("carrier-fields");
    for (const f of spec) {
      const wrap = document.createElement("div");
      wrap.className = "field";
      wrap.dataset.field = f.name;
      if (f.kind) wrap.dataset.kind = f.kind;
      const id = "cf-" + f.name.replace(".", "-");
      const label = document.createElement("label");
      label.htmlFor = id;
      label.textContent = f.label;
      let input;
      if (f.options) {
        input = document.createElement("select");
        for (const o of f.options) input.add(new Option(o, o));
        input.addEventListener("change", showKind);
      } else {
        input = document.createElement("input");
        input.type = f.secret ? "password" : (f.type || "text");
        input.autocomplete = "off";
        input.spellcheck = false;
        if (f.step) input.step = f.step;
      }
      input.id = id;
      input.name = f.name;
      input.dataset.testid = "carrier-field-" + f.name;
      inputs[f.name] = input;
      wrap.append(label, input);
      if (f.hint) { const h = document.createElement("div"); h.className = "hint"; h.textContent = f.hint; wrap.appendChild(h); }
      box.appendChild(wrap);
    }
    $("carrier-form").addEventListener("submit", (e) => { e.preventDefault(); save(); });
    $("carrier-cancel").addEventListener("click", close);
  }

  // showKind shows only the fields of the chosen kind.
  function showKind() {
    const kind = inputs.kind.value;
    for (const w of $("carrier-fields").children) w.hidden = !!w.dataset.kind && w.dataset.kind !== kind;
  }

  function clearErrors() {
    $("carrier-form-error").textContent = "";
    for (const e of $("carrier-fields").querySelectorAll(".field-error")) e.remove();
    for (const w of $("carrier-fields").children) w.classList.remove("invalid");
  }

  // open shows the form for c (a carrier as the API lists it), or for a new carrier.
  function open(c, saved) {
    editing = c || null;
    onSaved = saved || (() => {});
    clearErrors();
    const v = c || { kind: "twilio", enabled: true, priority: 0, weight: 1 };
    for (const f of spec) {
      const input = inputs[f.name];
      const val = get(v, f.name);
      if (f.type === "checkbox") input.checked = !!val;
      else if (f.secret) { input.value = ""; input.placeholder = c && c[f.secret] ? "stored; leave empty to keep" : ""; }
      else input.value = val == null ? "" : String(val);
      input.readOnly = !!(f.createOnly && c);
    }
    $("carrier-form-title").textContent = c ? "Edit carrier " + c.id : "Add a carrier";
    showKind();
    $("carrier-form").hidden = false;
    inputs[c ? "from" : "id"].focus();
  }

  function close() { $("carrier-form").hidden = true; editing = null; }

  // value reads the form into the API's JSON: empty secrets and durations are left out (kept,
  // or defaulted), numbers are numbers.
  function value() {
    const out = {};
    const kind = inputs.kind.value;
    for (const f of spec) {
      if (f.kind && f.kind !== kind) continue;
      const input = inputs[f.name];
      if (f.type === "checkbox") { set(out, f.name, input.checked); continue; }
      const raw = input.value.trim();
      if (raw === "" && (f.secret || f.duration || f.type === "number")) continue;
      set(out, f.name, f.type === "number" ? Number(raw) : raw);
    }
    return out;
  }

  async function save() {
    clearErrors();
    const cfg = value();
    const id = editing ? editing.id : cfg.id;
    if (!id) { showErrors([{ field: "id", message: "required" }]); return; }
    try {
      await api("PUT", "/api/admin/carriers/" + encodeURIComponent(id), cfg);
      Console.say("saved carrier " + id);
      close();
      onSaved();
    } catch (e) {
      if (e.fields && e.fields.length) showErrors(e.fields);
      $("carrier-form-error").textContent = e.message;
    }
  }

  // showErrors puts each field error beside its field; one with no field of its own (or a
  // field of the other kind) shows under the form.
  function showErrors(fields) {
    const orphans = [];
    for (const fe of fields) {
      const wrap = $("carrier-fields").querySelector('[data-field="' + CSS.escape(fe.field) + '"]');
      if (!wrap || wrap.hidden) { orphans.push(fe.field + ": " + fe.message); continue; }
      const msg = document.createElement("span");
      msg.className = "field-error";
      msg.dataset.testid = "field-error";
      msg.dataset.field = fe.field;
      msg.textContent = fe.message;
      wrap.classList.add("invalid");
      wrap.appendChild(msg);
    }
    if (orphans.length) $("carrier-form-error").textContent = orphans.join("; ");
  }

  document.addEventListener("DOMContentLoaded", build);
  return { open, close };
})();
