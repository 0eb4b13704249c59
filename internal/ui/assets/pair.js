// Fungi dashboard, the forms a new user needs besides the lists: pairing
// by invite code, the devices that want to connect (accept or dismiss),
// publishing a port that already serves, and the settings a running node
// applies at once. Each calls the same daemon API the CLI does (through
// /api/), with app.js's el, api and act.
"use strict";

function pairSection() {
  const invErr = el("div", { class: "error", id: "invite-error", role: "alert" });
  const invOut = el("div", { id: "invite-out", "aria-live": "polite" });
  const role = el("select", { id: "invite-role", "aria-label": "Role the joining device gets here" },
    el("option", { value: "access" }, "access: use the services here"),
    el("option", { value: "admin" }, "admin: also run services here"));
  const alias = el("input", { id: "invite-alias", placeholder: "its alias here (optional)", "aria-label": "Alias for the joining device" });
  const invite = el("form", { id: "invite-form", onsubmit: ev => { ev.preventDefault(); act(invErr, async () => {
    const inv = await api("POST", "/api/devices/invite", { role: role.value, alias: alias.value.trim() });
    const copied = el("span", { class: "muted", "aria-live": "polite" });
    invOut.replaceChildren(
      el("p", {}, "On the other device run ", el("code", { text: "fungi device join CODE" }), " or paste the code into its dashboard. It works once, until " + inv.expires + "."),
      el("code", { id: "invite-code", class: "code-box", text: inv.code }),
      el("div", { class: "row" }, el("button", { type: "button", id: "copy-invite", onclick: async () => {
        try { await navigator.clipboard.writeText(inv.code); copied.textContent = "copied"; } catch (e) { copied.textContent = "select and copy the code: " + e.message; }
      } }, "Copy code"), copied));
  }); } }, el("div", { class: "row" }, role, alias, el("button", { type: "submit", class: "primary", id: "invite-btn" }, "Create invite code")), invErr, invOut);

  const joinErr = el("div", { class: "error", id: "join-error", role: "alert" });
  const joinOut = el("div", { id: "join-out", class: "muted", "aria-live": "polite" });
  const code = el("input", { id: "join-code", placeholder: "fungi1-…", required: true, "aria-label": "Invite code", class: "wide" });
  const joinAlias = el("input", { id: "join-alias", placeholder: "its alias here", "aria-label": "Alias for the inviting device" });
  const join = el("form", { id: "join-form", onsubmit: ev => { ev.preventDefault(); act(joinErr, async () => {
    joinOut.textContent = "joining…";
    try {
      const d = await api("POST", "/api/devices/join", { code: code.value.trim(), alias: joinAlias.value.trim() });
      joinOut.textContent = "joined " + (d.alias || d.peerId) + "; it is in the devices below.";
      code.value = joinAlias.value = "";
    } catch (e) { joinOut.textContent = ""; throw e; }
  }); } }, el("div", { class: "row" }, code, joinAlias, el("button", { type: "submit", class: "primary", id: "join-btn" }, "Join")), joinErr, joinOut);

  return el("section", { id: "pair" }, el("h2", { text: "Pair a device" }),
    el("h3", { text: "Invite another device here" }), invite,
    el("h3", { text: "Join a device with its code" }), join);
}

function pendingTable(list) {
  if (!list) return el("p", { class: "muted", text: "Loading…" });
  if (!list.length) return el("p", { class: "muted", id: "no-pending", text: "None: a device this node does not know that tries to connect shows here." });
  return el("div", { class: "table-wrap" }, el("table", { id: "pending" },
    el("thead", {}, el("tr", {}, ["Peer ID", "From", "Last seen", "Attempts", "Accept as"].map(h => el("th", { scope: "col", text: h })))),
    el("tbody", {}, list.map(p => {
      const err = el("div", { class: "error" });
      const draft = drafts["pending:" + p.peerId] || (drafts["pending:" + p.peerId] = {});
      const alias = el("input", { class: "pending-alias", placeholder: "alias", size: 12, "aria-label": "Alias for " + p.peerId,
        oninput: () => { draft.alias = alias.value; } });
      const role = el("select", { class: "pending-role", "aria-label": "Role for " + p.peerId, onchange: () => { draft.role = role.value; } },
        ["access", "admin"].map(r => el("option", { value: r }, r)));
      if (draft.alias !== undefined) alias.value = draft.alias;
      if (draft.role) role.value = draft.role;
      const post = (what, body) => act(err, async () => {
        await api("POST", "/api/devices/pending/" + encodeURIComponent(p.peerId) + "/" + what, body);
        delete drafts["pending:" + p.peerId];
      });
      return el("tr", { "data-peer": p.peerId },
        el("td", { class: "mono", text: p.peerId }), el("td", { class: "mono", text: p.addr || "—" }),
        el("td", { text: p.lastSeen }), el("td", { text: p.attempts }),
        el("td", {}, el("div", { class: "row" }, alias, role,
          el("button", { "data-action": "accept", class: "primary", onclick: () => post("accept", { alias: alias.value.trim(), role: role.value }) }, "Accept"),
          el("button", { "data-action": "dismiss", onclick: () => post("dismiss") }, "Dismiss")), err));
    }))));
}

function exposeForm() {
  const err = el("div", { class: "error", id: "expose-error", role: "alert" });
  const out = el("div", { id: "expose-out", class: "muted", "aria-live": "polite" });
  const name = el("input", { id: "expose-name", placeholder: "name, e.g. nas", required: true, "aria-label": "Service name" });
  const port = el("input", { id: "expose-port", type: "number", min: 1, max: 65535, placeholder: "port", required: true, "aria-label": "Port it listens on" });
  const host = el("input", { id: "expose-host", placeholder: "127.0.0.1", "aria-label": "Host it runs on (default 127.0.0.1)" });
  const usage = el("select", { id: "expose-usage", "aria-label": "What it is" },
    [["", "guess from the port"], ["web", "web"], ["ssh", "ssh"], ["tcp", "tcp"], ["raw", "raw"]].map(([v, t]) => el("option", { value: v }, t)));
  const form = el("form", { id: "expose-form", onsubmit: ev => { ev.preventDefault(); act(err, async () => {
    out.textContent = "publishing…";
    try {
      const s = await api("POST", "/api/services/expose", { name: name.value.trim(), port: Number(port.value), host: host.value.trim(), usage: usage.value });
      out.textContent = "published " + s.name + " (" + s.state + ")";
      name.value = port.value = host.value = "";
    } catch (e) { out.textContent = ""; throw e; }
  }); } }, el("div", { class: "row" }, name, port, host, usage, el("button", { type: "submit", class: "primary", id: "expose-btn" }, "Publish")), err, out);
  return el("section", {}, el("h2", { text: "Publish a service that already runs" }),
    el("p", { class: "muted", text: "A web page, sshd or a NAS on this machine or its LAN, as `fungi service expose` does." }), form);
}

function settingsSection() {
  const body = el("div", { id: "settings" }, el("p", { class: "muted", text: "Loading…" }));
  api("GET", "/api/config").then(c => {
    body.replaceChildren(...c.keys.map(k => {
      const err = el("div", { class: "error" });
      const done = el("span", { class: "muted", "aria-live": "polite" });
      const input = k.bool
        ? el("select", { "aria-label": k.key }, ["true", "false"].map(v => el("option", { value: v, selected: (k.value[0] || "false") === v }, v)))
        : el("input", { value: k.value.join(" "), class: "wide", "aria-label": k.key, placeholder: k.list ? "values, space-separated" : "" });
      const save = () => act(err, async () => {
        done.textContent = "";
        const v = k.list ? input.value.split(/\s+/).filter(x => x) : [input.value.trim()];
        const r = await api("POST", "/api/config", { key: k.key, value: v });
        done.textContent = "saved; applies " + r.when;
      });
      return el("div", { class: "setting", "data-key": k.key },
        el("label", {}, el("code", { text: k.key }), " ", el("span", { class: "muted", text: "(applies " + k.when + ")" })),
        el("div", { class: "row" }, input, el("button", { "data-action": "save", onclick: save }, "Save"), done), err);
    }));
  }).catch(e => { body.replaceChildren(el("p", { class: "error", text: e.message })); });
  return el("section", {}, el("h2", { text: "Settings applied at once" }),
    el("p", { class: "muted", text: "Other keys: `fungi config set KEY VALUE`, then restart the daemon." }), body);
}
