// Keybrake dashboard: calls waiting for a person. Lists the pending
// approvals, live, with Approve and Deny buttons and a reason, all usable
// from the keyboard. Uses app.js's API client (window.Keybrake). Text from
// the API is only ever set with textContent.
"use strict";

(function () {
  const POLL_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let timer = null;
  let role = "";
  const items = new Map(); // approval id -> its <li>, kept across polls so focus and typed reasons stay

  function kb() { return window.Keybrake; }

  // usd renders the API's dollars as written, with at least two decimals.
  function usd(n) {
    let s = String(n);
    if (!s.includes(".")) s += ".00";
    else if (s.split(".")[1].length < 2) s += "0";
    return "$" + s;
  }

  function waited(since) {
    const s = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
    return s < 120 ? s + " s" : Math.round(s / 60) + " min";
  }

  function announce(msg) { $("approvals-status").textContent = msg; }

  async function poll() {
    const section = $("approvals");
    if (!sessionStorage.getItem("keybrake_api_token") || !$("signin").hidden) {
      section.hidden = true;
      role = "";
      return;
    }
    try {
      if (!role) {
        const { data } = await kb().api("GET", "whoami");
        role = data.role;
      }
      if (role === "issuer") { section.hidden = true; return; }
      const { data } = await kb().api("GET", "approvals?status=pending");
      render(data.approvals || []);
      section.hidden = false;
    } catch (e) {
      if (e.status === 403) section.hidden = true;
    }
  }

  function render(list) {
    const ul = $("approvals-list");
    const seen = new Set();
    for (const a of list) {
      seen.add(a.approval_id);
      let li = items.get(a.approval_id);
      if (!li) {
        li = item(a);
        items.set(a.approval_id, li);
        ul.append(li);
      }
      li.querySelector(".waited").textContent = "waiting " + waited(a.requested_at);
    }
    for (const [id, li] of items) {
      if (!seen.has(id) && !li.contains(document.activeElement)) { li.remove(); items.delete(id); }
    }
    $("approvals-empty").hidden = items.size > 0;
    $("approvals-count").textContent = items.size ? " (" + items.size + ")" : "";
  }

  function item(a) {
    const el = kb().el;
    const what = a.vendor + " " + a.method + " " + a.path + ", " + usd(a.estimate_usd);
    const reasonID = "reason-" + a.approval_id;
    const reason = el("input", { id: reasonID, type: "text", maxlength: "500", autocomplete: "off" });
    const err = el("p", { class: "error", role: "alert" });
    const decide = (verb) => async (ev) => {
      const buttons = li.querySelectorAll("button");
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await kb().api("POST", "approvals/" + encodeURIComponent(a.approval_id) + "/" + verb, { reason: reason.value });
        const next = li.nextElementSibling || li.previousElementSibling;
        li.remove();
        items.delete(a.approval_id);
        $("approvals-empty").hidden = items.size > 0;
        $("approvals-count").textContent = items.size ? " (" + items.size + ")" : "";
        announce((verb === "approve" ? "Approved " : "Denied ") + a.approval_id + ": " + what + ".");
        if (next) next.querySelector("input").focus(); else $("approvals-title").focus();
      } catch (e) {
        err.textContent = e.message;
        buttons.forEach((b) => { b.disabled = false; });
        ev.target.focus();
      }
    };
    const canDecide = role === "admin" || role === "approver";
    const li = el("li", { "data-approval": a.approval_id },
      el("div", { class: "head" },
        el("span", { class: "name" }, el("code", { text: a.approval_id }), " ", el("span", { text: a.agent_run_label || "(no run label)" })),
        el("span", { class: "figures" }, el("span", { text: what + " · key " + a.key_id + " · " }), el("span", { class: "waited" }))),
      canDecide ? el("label", { for: reasonID, text: "Reason (audited, optional)" }) : null, canDecide ? reason : null,
      !canDecide ? null : el("div", { class: "actions" },
        el("button", { type: "button", "data-action": "approve", "aria-label": "Approve " + a.approval_id + ": " + what,
          onclick: decide("approve") }, "Approve"),
        el("button", { type: "button", class: "danger", "data-action": "deny", "aria-label": "Deny " + a.approval_id + ": " + what,
          onclick: decide("deny") }, "Deny")),
      err);
    return li;
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (!document.hidden) await poll();
      schedule();
    }, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signout").addEventListener("click", () => { role = ""; items.clear(); $("approvals-list").replaceChildren(); });
    poll();
    schedule();
  });
})();
