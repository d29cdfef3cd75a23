// Keybrake dashboard. Plain JavaScript, no build step, no dependencies.
// It is a client of the key API like any other: every data call sends the
// token the person signed in with. Text from the API is only ever set with
// textContent, never parsed as HTML.
"use strict";

(function () {
  const API = "/vault/";
  const TOKEN_KEY = "keybrake_api_token";
  const POLL_MS = 2000;
  const AUDIT_LIMIT = 500;
  const RECENT_KEYS = 500; // the overview groups the newest keys into runs

  const $ = (id) => document.getElementById(id);
  let pollTimer = null;
  let resolveAvailable = false;
  let busy = false;
  let lastRuns = [];

  // Outcomes in words: a person reads "Endpoint not in the allowlist", the
  // code (endpoint_denied) stays in the CSV and the API.
  const OUTCOME_WORDS = {
    forwarded: "Forwarded", idempotent_replay: "Replay, not charged again",
    cap_hit: "Cap reached", budget_hit: "Token budget reached", revoked: "Key revoked", expired: "Key expired",
    wrong_vendor: "Key is for another vendor", endpoint_denied: "Endpoint not in the allowlist",
    unknown_cost_denied: "Cost could not be priced", bad_request: "Malformed request",
    unauthenticated: "Unknown or missing vault key", idempotency_mismatch: "Idempotency key reused for another request",
    idempotency_in_flight: "Same idempotency key still in flight", upstream_error: "Vendor answered with an error",
    upstream_unreachable: "Vendor unreachable", client_gone: "Client left before the answer",
    rule_denied: "Refused by a rule of the key",
  };
  const RULE_WORDS = {
    max_call_usd: "over the per-call maximum", max_calls: "out of calls", rate: "over the rate",
    allow: "not on the allow list", once_per: "already done once",
  };
  function ruleWords(rule) { return rule + (RULE_WORDS[rule] ? " (" + RULE_WORDS[rule] + ")" : ""); }
  // rulesText is a key's rules in one line: "max_calls 60 · rate 30/1m ·
  // allow customer: cus_A, cus_B · once_per customer".
  function rulesText(r) {
    if (!r) return "";
    const parts = [];
    if (r.max_call_usd !== undefined) parts.push("max_call_usd " + fmtUSD(micros(r.max_call_usd)));
    if (r.max_calls !== undefined) parts.push("max_calls " + r.max_calls);
    if (r.rate) parts.push("rate " + r.rate);
    for (const [subject, values] of Object.entries(r.allow || {})) parts.push("allow " + subject + ": " + values.join(", "));
    if (r.once_per) parts.push("once_per " + r.once_per);
    return parts.join(" · ");
  }
  function outcomeWords(code) { return OUTCOME_WORDS[code] || code; }

  // ---- money: the API sends dollars with at most 6 decimals; sums are
  // done in integer micro-dollars, like the server.
  function micros(usd) { return Math.round(Number(usd || 0) * 1e6); }
  function fmtUSD(m) {
    const neg = m < 0;
    m = Math.abs(m);
    let frac = String(m % 1e6).padStart(6, "0").replace(/0+$/, "");
    if (frac.length < 2) frac = frac.padEnd(2, "0");
    return (neg ? "-$" : "$") + Math.floor(m / 1e6).toLocaleString("en-US") + "." + frac;
  }
  // percent is used*100/cap rounded to one decimal, 100 when over.
  function percent(used, cap) {
    if (cap <= 0) return used > 0 ? 100 : 0;
    return Math.min(100, Math.round((used * 1000) / cap) / 10);
  }

  // ---- API calls
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  class APIError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function api(method, path, body) {
    const init = { method, headers: { Authorization: "Bearer " + token() }, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(API + path, init);
    } catch (e) {
      throw new APIError(0, "unreachable", "Keybrake cannot be reached; retrying.");
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      const err = (data && data.error) || {};
      throw new APIError(res.status, err.code || "http_" + res.status, err.message || "HTTP " + res.status);
    }
    return { data, res };
  }

  // ---- small DOM helpers
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") n.textContent = v;
      else if (k === "class") n.className = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) n.append(c);
    return n;
  }
  function stats(dl, items) {
    dl.replaceChildren(...items.map(([label, value, id]) =>
      el("div", {}, el("dt", { text: label }), el("dd", { text: value, id: id }))));
  }
  function setStatus(msg, isError) {
    $("status").textContent = msg || "";
    $("status").classList.toggle("error-status", !!isError);
  }

  // bar renders spend against a cap as an accessible progress bar.
  function bar(label, used, cap) {
    const pct = percent(used, cap);
    const fill = el("div", { class: "fill" });
    fill.style.width = pct + "%";
    const b = el("div", {
      class: "bar" + (pct >= 100 ? " full" : pct >= 80 ? " high" : ""),
      role: "progressbar",
      "aria-label": label,
      "aria-valuemin": "0",
      "aria-valuemax": "100",
      "aria-valuenow": String(pct),
      "aria-valuetext": fmtUSD(used) + " of " + fmtUSD(cap) + " (" + pct + "%)",
      "data-used-micros": String(used),
      "data-cap-micros": String(cap),
    }, fill);
    return b;
  }

  // capOf is the cap a key's bar is drawn against: its lifetime cap, else
  // its daily cap.
  function capOf(k) {
    if (k.total_usd_cap !== null && k.total_usd_cap !== undefined) return micros(k.total_usd_cap);
    return micros(k.daily_usd_cap);
  }

  // ---- vendor dashboards
  function vendorLink(vendor, id) {
    if (!id) return null;
    const e = encodeURIComponent(id);
    if (vendor === "stripe") {
      if (/^(pi|ch|py)_/.test(id)) return "https://dashboard.stripe.com/payments/" + e;
      if (/^re_/.test(id)) return "https://dashboard.stripe.com/refunds/" + e;
      if (/^cus_/.test(id)) return "https://dashboard.stripe.com/customers/" + e;
      if (/^in_/.test(id)) return "https://dashboard.stripe.com/invoices/" + e;
      if (/^sub_/.test(id)) return "https://dashboard.stripe.com/subscriptions/" + e;
      return null;
    }
    if (vendor === "twilio") {
      if (/^(SM|MM)/.test(id)) return "https://console.twilio.com/us1/monitor/logs/sms?frameUrl=" +
        encodeURIComponent("/console/sms/logs/" + id);
      if (/^CA/.test(id)) return "https://console.twilio.com/us1/monitor/logs/calls?frameUrl=" +
        encodeURIComponent("/console/voice/calls/logs/" + id);
      return null;
    }
    if (vendor === "resend") return "https://resend.com/emails/" + e;
    return null;
  }

  // ---- views
  function show(id) {
    for (const s of ["signin", "overview", "run"]) $(s).hidden = s !== id;
    $("signout").hidden = id === "signin";
  }

  function todayUTC() { return new Date().toISOString().slice(0, 10); }

  async function renderOverview() {
    const day = todayUTC();
    const [{ data: sum }, { data: recent }] = await Promise.all([
      api("GET", "summary?day=" + day),
      api("GET", "keys?limit=" + RECENT_KEYS),
    ]);
    const keys = recent.data;
    $("today-date").textContent = day;
    stats($("today-stats"), [
      ["Spent", fmtUSD(micros(sum.spent_usd)), "today-spent"],
      ["Reserved", fmtUSD(micros(sum.reserved_usd)), "today-reserved"],
      ["Calls", String(sum.calls), "today-calls"],
      ["Cap hits", String(sum.cap_hits), "today-cap-hits"],
      ["Other refusals", String(sum.refused), "today-refused"],
    ]);

    lastRuns = groupRuns(keys);
    renderRuns();
  }

  // groupRuns groups keys (newest first) into runs: a run is active while
  // one of its keys is; its bar counts its active keys, or all of them once
  // none is; its expiry is its active keys' latest, else when it stopped.
  function groupRuns(keys) {
    const runs = new Map();
    for (const k of keys) {
      const r = runs.get(k.agent_run_label) || { label: k.agent_run_label, keys: [], newest: "" };
      r.keys.push(k);
      if (k.created_at > r.newest) r.newest = k.created_at;
      runs.set(k.agent_run_label, r);
    }
    for (const r of runs.values()) {
      const active = r.keys.filter((k) => k.status === "active");
      const counted = active.length ? active : r.keys;
      r.status = active.length ? "active" : r.keys[0].status;
      r.used = counted.reduce((s, k) => s + micros(k.spent_usd) + micros(k.reserved_usd), 0);
      r.cap = counted.reduce((s, k) => s + capOf(k), 0);
      r.until = active.length ? active.map((k) => k.expires_at).sort().pop()
        : r.keys.map((k) => k.revoked_at || k.expires_at).sort().pop();
      r.vendors = [...new Set(r.keys.map((k) => k.vendor))];
      r.endpoints = [...new Set(r.keys.flatMap((k) => k.allowed_endpoints || []))];
    }
    return [...runs.values()].sort((a, b) =>
      (a.status === "active") !== (b.status === "active") ? (a.status === "active" ? -1 : 1)
        : (a.newest < b.newest ? 1 : -1));
  }

  function shortTime(iso) { return iso ? iso.replace("T", " ").replace(/(:\d\d)(\.\d+)?Z$/, "$1") + " UTC" : ""; }

  // renderRuns shows the runs matching the search box.
  function renderRuns() {
    const q = $("run-search").value.trim().toLowerCase();
    const list = lastRuns.filter((r) => !q || [r.label, ...r.vendors, ...r.endpoints].some((s) => (s || "").toLowerCase().includes(q)));
    $("runs").replaceChildren(...list.map((r) => {
      const name = r.label || "(no run label)";
      const pct = percent(r.used, r.cap);
      const when = r.status === "active" ? "expires " + shortTime(r.until)
        : (r.status === "revoked" ? "revoked " : "expired ") + shortTime(r.until);
      return el("li", { "data-run": r.label, "data-status": r.status },
        el("div", { class: "head" },
          el("span", { class: "name" }, el("a", { href: "#/run/" + encodeURIComponent(r.label), text: name }), " ",
            el("span", { class: "badge " + r.status, text: r.status })),
          el("span", { class: "figures", text: fmtUSD(r.used) + " of " + fmtUSD(r.cap) + " · " + pct + "%" +
            (r.keys.length > 1 ? " · " + r.keys.length + " keys" : "") })),
        bar("Spend of run " + name + " against its cap", r.used, r.cap),
        el("p", { class: "meta", text: r.vendors.join(", ") + " · " + when + " · " + r.endpoints.join(", ") }));
    }));
    $("runs-empty").hidden = list.length > 0;
    $("runs-empty").textContent = lastRuns.length ? "No run matches “" + q + "”." : "No keys yet.";
  }

  async function renderRun(label) {
    const q = "agent_run_label=" + encodeURIComponent(label);
    const [{ data: sum }, { data: audit }] = await Promise.all([
      api("GET", "summary?" + q),
      api("GET", "audit?limit=" + AUDIT_LIMIT + "&" + q),
    ]);
    $("run-title").textContent = "Run " + (label || "(no run label)");
    stats($("run-stats"), [
      ["Spent", fmtUSD(micros(sum.spent_usd)), "run-spent"],
      ["Reserved", fmtUSD(micros(sum.reserved_usd)), "run-reserved"],
      ["Forwarded", String(sum.forwarded), "run-forwarded"],
      ["Replays", String(sum.replays), "run-replays"],
      ["Cap hits", String(sum.cap_hits), "run-cap-hits"],
      ["Other refusals", String(sum.refused), "run-refused"],
    ]);
    renderKeys(sum.keys || []);
    const reasons = Object.entries(sum.refusals || {});
    const byRule = Object.entries(sum.refusals_by_rule || {}).map(([k, n]) =>
      el("li", { "data-rule": k, text: "Rule " + ruleWords(k) + ": " + n }));
    $("run-refusals").replaceChildren(...(reasons.length ? reasons.map(([k, n]) =>
      el("li", { "data-outcome": k, text: outcomeWords(k) + ": " + n })) : [el("li", { text: "none" })]), ...byRule);
    renderCalls(audit.data, label);
    $("calls-note").textContent = audit.next_cursor
      ? "Showing the first " + AUDIT_LIMIT + " calls; the CSV has them all." : "";
  }

  function renderKeys(keys) {
    const ul = $("run-keys");
    // Keep an open revoke confirmation across refreshes.
    const confirming = ul.querySelector("[data-confirming]");
    const confirmingID = confirming && confirming.getAttribute("data-key");
    ul.replaceChildren(...keys.map((k) => {
      const used = micros(k.spent_usd) + micros(k.reserved_usd);
      const cap = capOf(k);
      const caps = [];
      if (k.total_usd_cap !== null) caps.push("total " + fmtUSD(micros(k.total_usd_cap)));
      if (k.daily_usd_cap !== null) caps.push("daily " + fmtUSD(micros(k.daily_usd_cap)));
      const actions = el("div", { class: "actions" });
      if (k.status === "active") revokeControls(actions, k.key_id, confirmingID === k.key_id);
      return el("li", { "data-key": k.key_id },
        el("div", { class: "head" },
          el("span", { class: "name" }, el("code", { text: k.key_id }), " ", el("span", { class: "badge " + k.status, text: k.status })),
          el("span", { class: "figures", text: k.vendor + " · spent " + fmtUSD(micros(k.spent_usd)) + " + reserved " +
            fmtUSD(micros(k.reserved_usd)) + " of " + caps.join(", ") + " · remaining " + fmtUSD(micros(k.remaining_usd)) })),
        bar("Spend of key " + k.key_id + " against its cap", used, cap),
        k.rules ? el("div", { class: "rules", "data-rules": "", text: "Rules: " + rulesText(k.rules) }) : null,
        actions);
    }));
  }

  // revokeControls asks once more before revoking: a revoke cannot be undone.
  function revokeControls(box, id, confirming) {
    if (!confirming) {
      box.removeAttribute("data-confirming");
      box.replaceChildren(el("button", { type: "button", class: "danger", "data-action": "revoke",
        "aria-label": "Revoke key " + id,
        onclick: () => { revokeControls(box, id, true); box.querySelector("button").focus(); } }, "Revoke"));
      return;
    }
    box.setAttribute("data-confirming", "");
    box.setAttribute("data-key", id);
    box.replaceChildren(
      el("span", { text: "Revoke " + id + "? Its next call is refused on every node." }),
      el("button", { type: "button", class: "danger", "data-action": "confirm-revoke", onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await api("DELETE", "keys/" + encodeURIComponent(id));
          setStatus("Key " + id + " revoked.");
          box.removeAttribute("data-confirming");
          await refresh();
        } catch (e) { handleError(e); ev.target.disabled = false; }
      } }, "Revoke now"),
      el("button", { type: "button", class: "secondary", onclick: () => revokeControls(box, id, false) }, "Cancel"));
  }

  function renderCalls(calls, label) {
    const tbody = $("calls").tBodies[0];
    const open = tbody.querySelector("[data-resolving]");
    const openID = open && open.getAttribute("data-call");
    tbody.replaceChildren(...calls.map((c) => {
      const href = vendorLink(c.vendor, c.vendor_txn_id);
      const txn = c.vendor_txn_id
        ? (href ? el("a", { href, target: "_blank", rel: "noopener noreferrer", text: c.vendor_txn_id,
            "aria-label": c.vendor_txn_id + " in the " + c.vendor + " dashboard (opens a new tab)" }) : c.vendor_txn_id)
        : "";
      const state = el("td", { text: c.cost_state });
      if (resolveAvailable && (c.cost_state === "unknown" || c.cost_state === "reserved")) {
        resolveControls(state, c.call_id, openID === c.call_id);
      }
      const refused = c.cost_state === "none" && !c.replay_of;
      return el("tr", { class: refused ? "refused" : null, "data-call": c.call_id,
        "data-resolving": resolveAvailable && openID === c.call_id },
        el("td", { text: c.started_at.replace("T", " ").replace(/\.\d+Z$|Z$/, "") }),
        el("td", { class: "mono", text: c.method + " " + c.path }),
        el("td", { title: c.outcome, "data-outcome": c.outcome,
          text: outcomeWords(c.outcome) + (c.rule ? ": " + ruleWords(c.rule) : "") }),
        el("td", { text: String(c.status_code || "") }),
        el("td", { class: "num", text: fmtUSD(micros(c.reserved_usd)) }),
        el("td", { class: "num", text: fmtUSD(micros(c.cost_usd)) }),
        state,
        el("td", { class: "mono" }, txn),
        el("td", { class: "mono", text: c.key_id }));
    }));
  }

  // resolveControls: shown only to an admin, and only when the server has
  // the resolve endpoint.
  function resolveControls(td, callID, open) {
    const btn = el("button", { type: "button", class: "secondary", "data-action": "resolve",
      "aria-expanded": open ? "true" : "false", "aria-label": "Resolve call " + callID }, "Resolve");
    td.append(" ", btn);
    const form = el("form", { class: "resolve-form", hidden: !open, novalidate: true });
    const ids = "resolve-" + callID;
    const cost = el("input", { id: ids + "-cost", type: "number", min: "0", step: "0.000001", inputmode: "decimal" });
    const release = el("input", { id: ids + "-release", type: "checkbox" });
    const reason = el("input", { id: ids + "-reason", type: "text", required: true });
    const err = el("p", { class: "error", role: "alert" });
    form.append(
      el("label", { for: ids + "-cost", text: "Real cost (USD)" }), cost,
      el("div", {}, release, " ", el("label", { for: ids + "-release", class: "inline", text: "Release: the vendor moved no money" })),
      el("label", { for: ids + "-reason", text: "Reason (audited)" }), reason,
      el("button", { type: "submit" }, "Resolve call"), err);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = release.checked ? { release: true, reason: reason.value } : { cost_usd: Number(cost.value), reason: reason.value };
      if (!reason.value.trim() || (!release.checked && cost.value === "")) {
        err.textContent = "Give a reason and either the real cost or release.";
        return;
      }
      try {
        await api("POST", "calls/" + encodeURIComponent(callID) + "/resolve", body);
        td.parentElement.removeAttribute("data-resolving");
        setStatus("Call " + callID + " resolved.");
        await refresh();
      } catch (e) { err.textContent = e.message; }
    });
    btn.addEventListener("click", () => {
      const nowOpen = form.hidden;
      form.hidden = !nowOpen;
      btn.setAttribute("aria-expanded", String(nowOpen));
      const tr = td.parentElement;
      if (nowOpen) { tr.setAttribute("data-resolving", ""); cost.focus(); } else tr.removeAttribute("data-resolving");
    });
    td.append(form);
  }

  // ---- routing and polling
  function route() {
    const m = location.hash.match(/^#\/run\/(.*)$/);
    return m ? { view: "run", label: decodeURIComponent(m[1]) } : { view: "overview" };
  }

  async function refresh() {
    if (!token()) { show("signin"); return; }
    if (busy) return;
    busy = true;
    const r = route();
    try {
      if (r.view === "run") await renderRun(r.label); else await renderOverview();
      show(r.view);
      $("live").textContent = "Live · every " + POLL_MS / 1000 + " s";
      $("live").classList.add("on");
      if ($("status").dataset.kind === "error") { setStatus(""); delete $("status").dataset.kind; }
    } catch (e) {
      handleError(e);
    } finally {
      busy = false;
    }
  }

  function handleError(e) {
    if (e.status === 401) {
      signOut("The API token was refused: " + e.message);
      return;
    }
    $("live").classList.remove("on");
    $("live").textContent = "Not live";
    setStatus(e.message, true);
    $("status").dataset.kind = "error";
  }

  function schedule() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      if (token()) schedule();
    }, POLL_MS);
  }

  function signOut(msg) {
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(pollTimer);
    resolveAvailable = false;
    $("live").textContent = "";
    $("live").classList.remove("on");
    show("signin");
    $("signin-error").textContent = msg || "";
    $("token").focus();
  }

  // probeResolve shows resolve buttons only when the token is an admin's
  // and the server answers the resolve endpoint (a GET there is 405 when it
  // exists, 404 when it does not). Nothing is resolved by the probe.
  async function probeResolve() {
    resolveAvailable = false;
    try {
      const { data } = await api("GET", "whoami");
      if (!data || data.role !== "admin") return;
    } catch (e) { return; }
    try {
      const res = await fetch(API + "calls/probe/resolve", { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
      resolveAvailable = res.status === 405 && /\bPOST\b/.test(res.headers.get("Allow") || "");
    } catch (e) { resolveAvailable = false; }
  }

  async function signIn(ev) {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (!t) { $("signin-error").textContent = "Enter the API token."; return; }
    sessionStorage.setItem(TOKEN_KEY, t);
    $("token").value = "";
    try {
      await api("GET", "whoami");
    } catch (e) {
      if (e.status === 401) { signOut("The API token was refused: " + e.message); return; }
      $("signin-error").textContent = e.message;
      sessionStorage.removeItem(TOKEN_KEY);
      return;
    }
    $("signin-error").textContent = "";
    await start();
    $("main").focus();
  }

  async function findTxn(ev) {
    ev.preventDefault();
    const id = $("txn").value.trim();
    const out = $("txn-result");
    if (!id) { out.textContent = "Enter a transaction id."; return; }
    try {
      const { data } = await api("GET", "audit?limit=10&vendor_txn_id=" + encodeURIComponent(id));
      if (!data.data.length) { out.textContent = "No call recorded " + id + "."; return; }
      const c = data.data[0];
      out.replaceChildren("Run ", el("a", { href: "#/run/" + encodeURIComponent(c.agent_run_label), text: c.agent_run_label || "(no run label)" }),
        ", key " + c.key_id + ", " + c.method + " " + c.path + ", " + fmtUSD(micros(c.cost_usd)) + ".");
    } catch (e) { handleError(e); }
  }

  async function downloadCSV() {
    const r = route();
    if (r.view !== "run") return;
    try {
      const res = await fetch(API + "audit?format=csv&agent_run_label=" + encodeURIComponent(r.label),
        { headers: { Authorization: "Bearer " + token() }, cache: "no-store" });
      if (!res.ok) throw new APIError(res.status, "http_" + res.status, "CSV export failed: HTTP " + res.status);
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: "keybrake-" + (r.label || "run").replace(/[^A-Za-z0-9._-]+/g, "_") + ".csv" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (e) { handleError(e); }
  }

  async function start() {
    await probeResolve();
    await refresh();
    schedule();
  }

  // The API client and DOM helper, for the dashboard's other scripts
  // (approvals.js).
  window.Keybrake = { api, el };

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("txn-form").addEventListener("submit", findTxn);
    $("run-search").addEventListener("input", renderRuns);
    $("signout").addEventListener("click", () => signOut(""));
    $("csv").addEventListener("click", downloadCSV);
    window.addEventListener("hashchange", () => { refresh(); $("main").focus(); });
    if (token()) start(); else show("signin");
  });
})();
