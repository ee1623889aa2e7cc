"use strict";
// The console's shell: the token, the API helper, the status line and the views. Each view is
// a <section class="view" data-view="name" data-title="Title"> in admin.html with a script
// that registers it (Console.view); the shell builds the navigation from the sections, shows
// the one the address names (#name) and refreshes only that one. A section's data-roles lists
// the roles that may use it ("admin supervisor"); without it a view is the admin's only. The
// shell asks GET /api/me who the token is and offers only the views of that role.

const Console = (() => {
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem("sb-admin-token") || "";
  // role is who the token is ("admin", "supervisor", "agent"), "" until the server said. It is
  // kept for the tab, so a console whose storage is down (a supervisor's token cannot be
  // checked then) keeps the views it had.
  let role = sessionStorage.getItem("sb-role") || "";
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
    if (!token) { say("paste your token (the admin token, SWITCHBOARD_ADMIN_TOKEN, or a supervisor's token) to start"); return; }
    if (!role) return;
    if (!v || !v.refresh || busy) return;
    busy = true;
    try {
      await v.refresh();
      if (Date.now() - actionFailedAt > actionErrorShown) say("live · updated " + new Date().toLocaleTimeString());
    } catch (e) {
      // A view draws only what it read in full, so what is on screen is the last good read.
      say(e.status === 503 ? "storage unavailable — showing the last known state" : e.message, true);
    } finally {
      busy = false;
    }
  }

  const allows = (s) => (s.dataset.roles || "admin").split(/\s+/).includes(role);

  let timer = 0;
  function show(name) {
    const sections = [...document.querySelectorAll("section.view")].filter(allows);
    if (views[current] && views[current].stop) views[current].stop();
    clearInterval(timer);
    for (const s of document.querySelectorAll("section.view")) s.hidden = true;
    for (const a of document.querySelectorAll("nav a")) a.hidden = !sections.some((s) => s.dataset.view === a.dataset.view);
    if (sections.length === 0) { current = ""; return; }
    if (!sections.some((s) => s.dataset.view === name)) name = sections[0].dataset.view;
    current = name;
    for (const s of sections) s.hidden = s.dataset.view !== name;
    for (const a of document.querySelectorAll("nav a")) {
      if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    const v = views[name] || {};
    if (v.start) v.start();
    refresh();
    if (v.refresh) timer = setInterval(refresh, v.every);
  }

  // whoami asks who the token is, then shows the views its role may use. An agent's token
  // has none. When the server cannot say (its storage is down) the role known before stays.
  async function whoami() {
    if (!token) { role = ""; show(""); refresh(); return; }
    try {
      const me = await api("GET", "/api/me");
      role = me.role;
      sessionStorage.setItem("sb-role", role);
      document.body.dataset.role = role;
      $("whoami").textContent = me.role === "admin" ? "admin" : me.name + " (" + me.role + ")";
      if (role !== "admin" && role !== "supervisor") say("this token is an agent's: the console is for the admin and supervisors", true);
    } catch (e) {
      if (e.status !== 503) { role = ""; sessionStorage.removeItem("sb-role"); $("whoami").textContent = ""; }
      say(e.status === 503 ? "storage unavailable — showing the last known state" : e.message, true);
    }
    show(location.hash.slice(1) || current);
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
      role = "";
      sessionStorage.removeItem("sb-role");
      $("token").value = "";
      actionFailedAt = 0; // a new token starts clean: what failed before is not its error
      whoami();
    });
    window.addEventListener("hashchange", () => show(location.hash.slice(1)));
    whoami();
  }
  document.addEventListener("DOMContentLoaded", start);

  return { api, say, cell, button, view, refresh, token: () => token, role: () => role, $ };
})();
