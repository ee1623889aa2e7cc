"use strict";
// The console's shell: the token, the API helper, the status line and the views. Each view is
// a <section class="view" data-view="name" data-title="Title"> in admin.html with a script
// that registers it (Console.view); the shell builds the navigation from the sections, shows
// the one the address names (#name) and refreshes only that one.

const Console = (() => {
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("sb-admin-token") || "";
  const views = {};
  let current = "";
  let busy = false;
  // actionFailedAt is when a button's action last failed: its error stays on screen a while
  // even though the live refresh goes on succeeding. A refresh's own error lasts until the
  // next refresh that works (so a wrong token's error goes as soon as the right one is used).
  let actionFailedAt = 0;
  const actionErrorShown = 6000;

  // APIError carries the API's error shape: code, message and per-field errors.
  class APIError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      const fields = (e.fields || []).map((f) => f.field + ": " + f.message).join("; ");
      super((e.message || ("HTTP " + status)) + (fields ? " (" + fields + ")" : ""));
      this.status = status;
      this.code = e.code || "";
      this.fields = e.fields || [];
    }
  }

  async function api(method, path, body) {
    const res = await fetch(path, {
      method, headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let data = {};
    try { data = text ? JSON.parse(text) : {}; } catch (_) { data = {}; }
    if (!res.ok) throw new APIError(res.status, data);
    return data;
  }

  function say(msg, isError) {
    $("status").textContent = msg;
    $("status").className = isError ? "err" : "muted";
  }

  function cell(row, content, testid) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    if (testid) td.dataset.testid = testid;
    row.appendChild(td);
    return td;
  }

  // button runs onclick, says how it went and refreshes the view.
  function button(label, testid, onclick) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.testid = testid;
    b.addEventListener("click", async () => {
      try { await onclick(); say("done: " + label); actionFailedAt = 0; } catch (e) { say(e.message, true); actionFailedAt = Date.now(); }
      refresh();
    });
    return b;
  }

  // view registers a view: refresh(api) fills it, every (ms, default 1500) repeats it while it
  // is shown; a view with a live stream of its own may use start/stop instead.
  function view(name, v) { views[name] = Object.assign({ every: 1500 }, v); }

  async function refresh() {
    const v = views[current];
    if (!token) { say("paste your token (the admin token, SWITCHBOARD_ADMIN_TOKEN) to start"); return; }
    if (!v || !v.refresh || busy) return;
    busy = true;
    try {
      await v.refresh();
      if (Date.now() - actionFailedAt > actionErrorShown) say("live · updated " + new Date().toLocaleTimeString());
    } catch (e) {
      say(e.message, true);
    } finally {
      busy = false;
    }
  }

  let timer = 0;
  function show(name) {
    const sections = [...document.querySelectorAll("section.view")];
    if (!sections.some((s) => s.dataset.view === name)) name = sections[0].dataset.view;
    if (views[current] && views[current].stop) views[current].stop();
    current = name;
    for (const s of sections) s.hidden = s.dataset.view !== name;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    clearInterval(timer);
    const v = views[name] || {};
    if (v.start) v.start();
    refresh();
    if (v.refresh) timer = setInterval(refresh, v.every);
  }

  function start() {
    const nav = document.querySelector("nav");
    for (const s of document.querySelectorAll("section.view")) {
      const a = document.createElement("a");
      a.href = "#" + s.dataset.view;
      a.textContent = s.dataset.title;
      a.dataset.view = s.dataset.view;
      a.dataset.testid = "tab-" + s.dataset.view;
      nav.appendChild(a);
    }
    $("login").addEventListener("submit", (e) => {
      e.preventDefault();
      token = $("token").value.trim();
      sessionStorage.setItem("sb-admin-token", token);
      $("token").value = "";
      actionFailedAt = 0; // a new token starts clean: what failed before is not its error
      show(current);
    });
    window.addEventListener("hashchange", () => show(location.hash.slice(1)));
    show(location.hash.slice(1));
  }
  document.addEventListener("DOMContentLoaded", start);

  return { api, say, cell, button, view, refresh, token: () => token, $ };
})();
