// betasync console: plain JavaScript, no dependencies. Every datum comes
// from the admin API, with the key kept in sessionStorage and sent in a
// header. Text goes into the page with textContent only, never as HTML.
"use strict";

(function () {
  const KEY = "betasync.key";
  const REFRESH_MS = 3000;
  const $ = (id) => document.getElementById(id);
  let role = "";
  let timer = 0;
  let current = null; // the last GET /anthropic_beta_headers

  // el builds an element with text and attributes.
  function el(tag, text, attrs) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }

  // errorMessage reads both error shapes: LiteLLM's {"error": {"message"}}
  // and FastAPI's {"detail": "..."} (or a list of {"msg"}).
  function errorMessage(status, body) {
    if (body && typeof body === "object") {
      if (body.error && typeof body.error === "object" && body.error.message) return body.error.message;
      if (typeof body.error === "string") return body.error;
      if (typeof body.detail === "string") return body.detail;
      if (Array.isArray(body.detail)) return body.detail.map((d) => (d && d.msg) || JSON.stringify(d)).join("; ");
      if (body.detail && typeof body.detail === "object") return body.detail.message || body.detail.error || JSON.stringify(body.detail);
      if (body.message) return body.message;
    }
    return "HTTP " + status;
  }

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, body, extraHeaders) {
    const headers = { "Authorization": "Bearer " + (sessionStorage.getItem(KEY) || "") };
    Object.assign(headers, extraHeaders || {});
    const init = { method, headers, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      if (res.status === 401) signOut("Your key was refused: " + errorMessage(res.status, data));
      throw new APIError(res.status, errorMessage(res.status, data));
    }
    return data;
  }

  function say(text, isError) {
    const s = $("status");
    s.textContent = text;
    s.className = isError ? "status error" : "status";
  }

  // fmtTime shortens an RFC 3339 UTC time to the second: 2026-01-02 15:04:05Z.
  function fmtTime(t) {
    if (!t) return "—";
    const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(\.\d+)?Z$/.exec(String(t));
    return m ? m[1] + " " + m[2] + "Z" : String(t);
  }

  // ---- sign-in ----

  async function signIn(key) {
    sessionStorage.setItem(KEY, key);
    try {
      const me = await api("GET", "/anthropic_beta_headers/whoami");
      role = me.role;
      $("who").textContent = "Signed in as " + me.name + " (" + me.role + ")";
    } catch (e) {
      sessionStorage.removeItem(KEY);
      $("signin-error").textContent = e.message;
      return;
    }
    $("signin-error").textContent = "";
    $("signin").hidden = true;
    $("console").hidden = false;
    $("signout").hidden = false;
    for (const e of document.querySelectorAll(".admin-only")) e.hidden = role !== "admin";
    await refreshAll();
    clearInterval(timer);
    timer = setInterval(refreshLive, REFRESH_MS);
  }

  function signOut(why) {
    sessionStorage.removeItem(KEY);
    shown.clear();
    clearInterval(timer);
    role = "";
    $("console").hidden = true;
    $("signout").hidden = true;
    $("signin").hidden = false;
    $("who").textContent = "";
    $("signin-error").textContent = why || "";
    for (const e of document.querySelectorAll(".admin-only")) e.hidden = true;
  }

  // ---- the matrix ----

  const META = new Set(["description", "provider_aliases"]);

  function renderMapping(m) {
    current = m;
    $("cur-version").textContent = String(m.version);
    $("cur-source").textContent = m.source;
    $("cur-hash").textContent = m.hash;
    $("cur-fetched").textContent = fmtTime(m.fetched_at);
    const cfg = m.config || {};
    const providers = Object.keys(cfg).filter((k) => !META.has(k)).sort();
    const aliases = cfg.provider_aliases || {};
    const betas = new Set();
    for (const p of providers) for (const b of Object.keys(cfg[p] || {})) betas.add(b);
    const rows = Array.from(betas).sort();
    const ov = m.overrides || {};

    const head = $("matrix-table").tHead.rows[0];
    while (head.cells.length > 1) head.deleteCell(1);
    for (const p of providers) head.appendChild(el("th", p, { scope: "col" }));

    const body = el("tbody");
    for (const b of rows) {
      const tr = el("tr", null, { "data-beta": b });
      tr.appendChild(el("th", b, { scope: "row", class: "mono" }));
      for (const p of providers) {
        const section = cfg[p] || {};
        let text, state;
        if (!Object.prototype.hasOwnProperty.call(section, b)) { text = "· absent"; state = "absent"; }
        else if (section[b] === null) { text = "✗ unsupported"; state = "unsupported"; }
        else if (section[b] === b) { text = "✓ forwarded"; state = "forwarded"; }
        else { text = "→ " + section[b]; state = "renamed"; }
        const overridden = ov[p] && Object.prototype.hasOwnProperty.call(ov[p], b);
        if (overridden) text = "★ " + text;
        const td = el("td", text, { "data-provider": p, "data-state": state, class: "cell " + state + (overridden ? " overridden" : "") });
        if (overridden) td.title = "set by an override";
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
    const table = $("matrix-table");
    table.replaceChild(body, table.tBodies[0]);
    applyFilter();

    fillSelect($("try-provider"), providers.concat(Object.keys(aliases).sort()));
    fillSelect($("ov-provider"), providers);
  }

  function fillSelect(sel, values) {
    const keep = sel.value;
    if (sel.options.length === values.length && Array.from(sel.options).every((o, i) => o.value === values[i])) return;
    sel.replaceChildren(...values.map((v) => el("option", v, { value: v })));
    if (values.includes(keep)) sel.value = keep;
  }

  function applyFilter() {
    const q = $("matrix-filter").value.trim().toLowerCase();
    for (const tr of $("matrix-table").tBodies[0].rows) {
      tr.hidden = q !== "" && !tr.dataset.beta.toLowerCase().includes(q);
    }
  }

  // ---- try a header ----

  async function tryHeader(ev) {
    ev.preventDefault();
    const out = $("try-result");
    const q = new URLSearchParams({ provider: $("try-provider").value });
    try {
      const r = await api("GET", "/anthropic_beta_headers/filter?" + q, undefined, { "anthropic-beta": $("try-value").value });
      const box = el("div");
      box.appendChild(el("p", r.header === null
        ? "Sent to " + r.provider + ": no anthropic-beta header (nothing survives)"
        : "Sent to " + r.provider + ": anthropic-beta: " + r.header, { id: "try-sent", class: "mono" }));
      if (!r.known) box.appendChild(el("p", "The provider has no section: nothing is sent (fail-closed)."));
      const ul = el("ul");
      for (const it of r.items) {
        let t = it.beta + ": " + it.result;
        if (it.result === "renamed") t += " → " + it.name;
        ul.appendChild(el("li", t, { class: "mono" }));
      }
      box.appendChild(ul);
      box.appendChild(el("p", "From version " + r.version + ".", { class: "note" }));
      out.replaceChildren(box);
    } catch (e) {
      out.replaceChildren(el("p", e.message, { class: "error", role: "alert" }));
    }
  }

  // ---- history ----

  function describeChanges(ch) {
    const lines = [];
    for (const p of Object.keys(ch || {}).sort()) {
      const c = ch[p];
      for (const [b, n] of Object.entries(c.added || {})) lines.push(p + ": + " + b + (n === null ? " (unsupported)" : n === b ? "" : " → " + n));
      for (const b of c.removed || []) lines.push(p + ": − " + b);
      for (const b of c.unsupported || []) lines.push(p + ": " + b + " → ✗ unsupported");
      for (const [b, r] of Object.entries(c.renamed || {})) lines.push(p + ": " + b + " " + (r.from === null ? "✗" : r.from) + " → " + r.to);
    }
    return lines;
  }

  function renderHistory(h) {
    const body = el("tbody");
    for (const v of h.versions || []) {
      const tr = el("tr", null, { "data-version": String(v.version) });
      tr.appendChild(el("th", "v" + v.version + (v.version === h.current ? " (current)" : ""), { scope: "row" }));
      tr.appendChild(el("td", v.source + (v.rolled_back_from ? " (from v" + v.rolled_back_from + ")" : "")));
      tr.appendChild(el("td", v.actor || "—"));
      tr.appendChild(el("td", fmtTime(v.fetched_at)));
      const lines = describeChanges(v.changes);
      const td = el("td");
      if (lines.length === 0) td.textContent = "—";
      else {
        const ul = el("ul", null, { class: "changes mono" });
        for (const l of lines.slice(0, 12)) ul.appendChild(el("li", l));
        if (lines.length > 12) ul.appendChild(el("li", "… " + (lines.length - 12) + " more"));
        td.appendChild(ul);
      }
      tr.appendChild(td);
      if (role === "admin") {
        const cell = el("td");
        if (v.version !== h.current) cell.appendChild(rollbackControl(v.version));
        tr.appendChild(cell);
      }
      body.appendChild(tr);
    }
    const table = $("history-table");
    table.replaceChild(body, table.tBodies[0]);
  }

  // rollbackControl asks for confirmation in the page: the first button
  // reveals "Confirm" and "Cancel".
  function rollbackControl(version) {
    const box = el("div", null, { class: "rollback" });
    const ask = el("button", "Roll back to v" + version, { type: "button", class: "rollback-ask" });
    ask.addEventListener("click", () => {
      const yes = el("button", "Confirm rollback to v" + version, { type: "button", class: "rollback-confirm danger" });
      const no = el("button", "Cancel", { type: "button" });
      no.addEventListener("click", () => { box.replaceChildren(ask); ask.focus(); });
      yes.addEventListener("click", () => write("Rollback to v" + version,
        () => api("POST", "/anthropic_beta_headers/rollback?version=" + encodeURIComponent(version))));
      box.replaceChildren(el("span", "Store v" + version + "'s document as a new version? "), yes, no);
      yes.focus();
    });
    box.appendChild(ask);
    return box;
  }

  // ---- overrides ----

  function renderOverrides(o) {
    const body = el("tbody");
    const all = o.overrides || {};
    for (const p of Object.keys(all).sort()) {
      for (const b of Object.keys(all[p]).sort()) {
        const v = all[p][b];
        const tr = el("tr");
        tr.appendChild(el("th", p, { scope: "row" }));
        tr.appendChild(el("td", b, { class: "mono" }));
        tr.appendChild(el("td", v === null ? "✗ unsupported (dropped)" : "→ " + v, { class: "mono" }));
        if (role === "admin") {
          const td = el("td");
          const btn = el("button", "Remove", { type: "button", "aria-label": "Remove override " + p + " " + b });
          btn.addEventListener("click", () => write("Removing override " + p + "/" + b,
            () => api("DELETE", "/anthropic_beta_headers/overrides/" + encodeURIComponent(p) + "/" + encodeURIComponent(b))));
          td.appendChild(btn);
          tr.appendChild(td);
        }
        body.appendChild(tr);
      }
    }
    if (body.rows.length === 0) {
      const tr = el("tr");
      tr.appendChild(el("td", "No overrides.", { colspan: role === "admin" ? "4" : "3" }));
      body.appendChild(tr);
    }
    const table = $("overrides-table");
    table.replaceChild(body, table.tBodies[0]);
  }

  function setOverride(ev) {
    ev.preventDefault();
    const p = $("ov-provider").value;
    const b = $("ov-beta").value.trim();
    const value = $("ov-drop").checked ? null : $("ov-value").value.trim();
    write("Override " + p + "/" + b, () => api("PUT",
      "/anthropic_beta_headers/overrides/" + encodeURIComponent(p) + "/" + encodeURIComponent(b), { value }));
  }

  // ---- fleet ----

  function renderFleet(f) {
    $("fleet-summary").textContent = f.count + " pod(s); newest version " + f.newest_version + "; " +
      (f.converged ? "converged" : f.count === 0 ? "no pod answered" : "NOT converged: " + f.lagging.length + " lagging");
    const lagging = new Set(f.lagging || []);
    const body = el("tbody");
    for (const p of f.pods || []) {
      const lag = lagging.has(p.pod);
      const tr = el("tr", null, { class: lag ? "lagging" : "", "data-pod": p.pod });
      tr.appendChild(el("th", p.pod, { scope: "row", class: "mono" }));
      tr.appendChild(el("td", "v" + p.version));
      tr.appendChild(el("td", lag ? "⚠ lagging" : "✓ current"));
      tr.appendChild(el("td", p.source));
      tr.appendChild(el("td", fmtTime(p.applied_at)));
      tr.appendChild(el("td", p.last_rejected ? "v" + p.last_rejected.version + ": " + p.last_rejected.reason : "—"));
      body.appendChild(tr);
    }
    const table = $("fleet-table");
    table.replaceChild(body, table.tBodies[0]);
  }

  // ---- schedule ----

  function renderSchedule(s) {
    $("sch-scheduled").textContent = s.scheduled ? "yes" : "no";
    $("sch-interval").textContent = s.interval_hours === null ? "—" : s.interval_hours + " h";
    $("sch-last").textContent = fmtTime(s.last_run);
    $("sch-next").textContent = fmtTime(s.next_run);
    $("sch-error").textContent = s.last_error ? fmtTime(s.last_error.time) + ": " + s.last_error.message : "none";
    $("sch-holder").textContent = s.lock_holder || "none";
  }

  // ---- refresh and writes ----

  // shown remembers what each view last rendered: a view is rebuilt only
  // when its data changed, so a refresh never throws away a half-done
  // confirmation, the focus, or a row under the pointer.
  const shown = new Map();

  async function load(path, render) {
    try {
      const data = await api("GET", path);
      const key = JSON.stringify(data) + role;
      if (shown.get(render) !== key) {
        shown.set(render, key);
        render(data);
      }
      return "";
    } catch (e) { return path + ": " + e.message; }
  }

  async function refreshAll() {
    const errs = await Promise.all([
      load("/anthropic_beta_headers", renderMapping),
      load("/anthropic_beta_headers/history?limit=20", renderHistory),
      load("/anthropic_beta_headers/overrides", renderOverrides),
      load("/schedule/anthropic_beta_headers_reload/status", renderSchedule),
      load("/anthropic_beta_headers/fleet", renderFleet),
    ]);
    reportErrors(errs);
  }

  // refreshLive runs every few seconds: the fleet, the schedule and the
  // version; history and overrides follow when the version moves.
  async function refreshLive() {
    if (!sessionStorage.getItem(KEY)) return;
    const before = current && current.version;
    const errs = await Promise.all([
      load("/anthropic_beta_headers", renderMapping),
      load("/schedule/anthropic_beta_headers_reload/status", renderSchedule),
      load("/anthropic_beta_headers/fleet", renderFleet),
    ]);
    if (current && current.version !== before) {
      errs.push(await load("/anthropic_beta_headers/history?limit=20", renderHistory));
      errs.push(await load("/anthropic_beta_headers/overrides", renderOverrides));
    }
    reportErrors(errs);
  }

  function reportErrors(errs) {
    const bad = errs.filter((e) => e);
    if (bad.length) say(bad.join(" · "), true);
    else if ($("status").classList.contains("error")) say("");
  }

  // write runs one change, says how it went, and refreshes (twice: the
  // replica's own subscriber may take a moment to apply the new version).
  async function write(what, fn) {
    say(what + "…");
    try {
      const r = await fn();
      say(what + ": " + ((r && r.message) || "done") + (r && r.version ? " (version " + r.version + ")" : ""));
    } catch (e) {
      say(what + " failed: " + e.message, true);
      return;
    }
    await refreshAll();
    setTimeout(refreshAll, 500);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const k = $("key").value.trim();
      $("key").value = "";
      if (k) signIn(k);
    });
    $("signout").addEventListener("click", () => signOut(""));
    $("matrix-filter").addEventListener("input", applyFilter);
    $("try-form").addEventListener("submit", tryHeader);
    $("override-form").addEventListener("submit", setOverride);
    $("ov-drop").addEventListener("change", () => { $("ov-value").disabled = $("ov-drop").checked; });
    $("reload-now").addEventListener("click", () => write("Reload", () => api("POST", "/reload/anthropic_beta_headers")));
    $("schedule-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const h = $("sch-hours").value;
      write("Schedule every " + h + " h", () => api("POST", "/schedule/anthropic_beta_headers_reload?hours=" + encodeURIComponent(h)));
    });
    $("schedule-cancel").addEventListener("click", () => write("Cancel schedule", () => api("DELETE", "/schedule/anthropic_beta_headers_reload")));
    const saved = sessionStorage.getItem(KEY);
    if (saved) signIn(saved);
  });
})();
