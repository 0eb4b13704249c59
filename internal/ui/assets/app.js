// Fungi dashboard: a single page routed by the URL fragment. Every action
// calls the JSON API under /api/ (the daemon's own API behind it); lists
// arrive as server-sent events from /api/events and re-render in place.
"use strict";

const state = { csrf: "", services: null, devices: null, connections: null, access: null, pending: null, node: null };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  if (tag === "table") labelCells(e);
  return e;
}

// drawn is a cell's HTML as first drawn, before the user typed into it or
// an error showed in it: what a live update compares.
function drawn(td) {
  if (td.fungiDrawn === undefined) td.fungiDrawn = td.outerHTML;
  return td.fungiDrawn;
}

// On a phone's screen a table's rows show as cards, each cell under its
// column's name (app.css), so every cell carries that name.
function labelCells(table) {
  const heads = [...table.querySelectorAll("thead th")].map(th => th.textContent);
  for (const tr of table.querySelectorAll("tbody tr")) {
    [...tr.children].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i]; drawn(td); });
  }
}

async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (method !== "GET") opts.headers["X-Fungi-CSRF"] = state.csrf;
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const res = await fetch(path, opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) throw new Error((data && data.error) || text.trim() || res.statusText);
  return data;
}

// act runs an action and shows its error (the daemon's words) in errBox.
async function act(errBox, f) {
  errBox.textContent = "";
  try { await f(); } catch (e) { errBox.textContent = e.message; }
}

function portURL(svc, p) {
  const path = svc.expose && svc.expose.usage === "web" && svc.expose.path ? svc.expose.path : "/";
  return "http://" + p.hostAddress + path;
}

function servicesTable(list) {
  if (!list) return el("p", { class: "muted", text: "Loading…" });
  if (!list.length) return el("p", { class: "muted", text: "No services yet: pull a manifest below." });
  return el("div", { class: "table-wrap" }, el("table", { id: "services" },
    el("thead", {}, el("tr", {}, ["Name", "State", "Runtime", "Ports", "Restarts", "Last error", "Actions"].map(h => el("th", { scope: "col", text: h })))),
    el("tbody", {}, list.map(s => {
      const err = el("div", { class: "error" });
      return el("tr", { "data-service": s.name },
        el("td", {}, el("a", { href: "#/service/" + encodeURIComponent(s.name), class: "svc-link", text: s.name })),
        el("td", { class: "state state-" + s.state, text: s.state }),
        el("td", { text: s.runtime }),
        el("td", {}, (s.ports || []).map(p => p.hostAddress && s.state === "running"
          ? el("div", {}, p.name + " ", el("a", { class: "port-link", href: portURL(s, p), target: "_blank", rel: "noopener", text: p.hostAddress }))
          : el("div", { text: p.name + " " + (p.hostAddress || "") }))),
        el("td", { text: s.restarts }),
        el("td", { class: "error-text", text: s.lastError }),
        el("td", {}, serviceButtons(s, err), err));
    }))));
}

function serviceButtons(s, err) {
  const b = (action, label) => el("button", { "data-action": action, "data-name": s.name,
    onclick: () => act(err, async () => {
      if (action === "remove" && !confirm("Remove " + s.name + "? Its data folder is kept.")) return;
      await api("POST", "/api/services/" + encodeURIComponent(s.name) + "/" + action);
    }) }, label);
  return [s.state === "running" || s.state === "starting" ? b("stop", "Stop") : b("start", "Start"), b("remove", "Remove")];
}

function pullForm() {
  const err = el("div", { class: "error", id: "pull-error", role: "alert" });
  const progress = el("div", { id: "pull-progress", class: "muted", "aria-live": "polite" });
  const manifest = el("input", { type: "file", id: "manifest-file", accept: ".yaml,.yml" });
  const artifact = el("input", { type: "file", id: "artifact-file", accept: ".wasm" });
  const text = el("textarea", { id: "manifest-text", placeholder: "…or paste a manifest here" });
  const form = el("form", { id: "pull-form", onsubmit: (ev) => {
    ev.preventDefault();
    act(err, async () => {
      const fd = new FormData();
      if (manifest.files[0]) fd.append("manifest", manifest.files[0]);
      else fd.append("manifest", new Blob([text.value]), "manifest.yaml");
      if (artifact.files[0]) fd.append("artifact", artifact.files[0]);
      progress.textContent = "pulling…";
      const res = await fetch("/api/services/pull", { method: "POST", body: fd, headers: { "X-Fungi-CSRF": state.csrf }, credentials: "same-origin" });
      if (!res.ok) { const t = await res.text(); let m = t; try { m = JSON.parse(t).error; } catch (e) {} progress.textContent = ""; throw new Error(m); }
      const reader = res.body.getReader(); const dec = new TextDecoder(); let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i); buf = buf.slice(i + 1);
          if (!line.trim()) continue;
          const p = JSON.parse(line);
          if (p.error) { progress.textContent = ""; throw new Error(p.error); }
          const pct = Number(p.total) > 0 ? " " + Math.round(100 * Number(p.current) / Number(p.total)) + "%" : "";
          progress.textContent = p.service && p.service.name ? "pulled " + p.service.name + " (" + p.service.state + ")" : p.message + pct;
        }
      }
    });
  } },
    el("div", { class: "row" }, el("label", { for: "manifest-file" }, "Manifest "), manifest,
      el("label", { for: "artifact-file" }, "source.file (wasm) "), artifact),
    el("label", { for: "manifest-text", class: "muted" }, "Pasted manifest"), text,
    el("button", { type: "submit", class: "primary", id: "pull-btn" }, "Pull"), progress, err);
  return el("section", {}, el("h2", { text: "Pull a service" }), form);
}

function nodeSection() {
  const n = state.node;
  if (!n) return el("section", {}, el("p", { class: "muted", text: "Loading node…" }));
  const copyMsg = el("span", { class: "muted", "aria-live": "polite" });
  const info = n.node;
  return el("section", { id: "node" }, el("h2", { text: "This node" }), el("dl", {},
    el("dt", { text: "Peer ID" }), el("dd", {}, el("code", { id: "peer-id", text: info.peerId }), " ",
      el("button", { id: "copy-peer-id", onclick: async () => {
        try { await navigator.clipboard.writeText(info.peerId); copyMsg.textContent = "copied"; } catch (e) { copyMsg.textContent = "select and copy the ID: " + e.message; }
      } }, "Copy"), copyMsg),
    el("dt", { text: "Addresses" }), el("dd", {}, (info.addrs || []).map(a => el("div", { class: "mono", text: a }))),
    el("dt", { text: "Reachability" }), el("dd", { text: info.reachability || "unknown" }),
    el("dt", { text: "Relay reservations" }), el("dd", {}, (info.relayReservations || []).length ? info.relayReservations.map(r =>
      el("div", { class: "mono", text: r.relayPeerId + (r.error ? " — " + r.error : " until " + r.expires) })) : "none"),
    el("dt", { text: "Runtimes" }), el("dd", {}, (n.runtimes.runtimes || []).map(r =>
      el("div", { text: r.name + ": " + (r.available ? r.engine : "unavailable — " + r.detail) })))));
}

const pages = {
  home() {
    return [el("h1", { text: "Node & services" }), nodeSection(),
      el("section", {}, el("h2", { text: "Services" }), el("div", { id: "services-slot" }, servicesTable(state.services))), pullForm(), exposeForm(), settingsSection()];
  },
  service(name) {
    const s = (state.services || []).find(x => x.name === name);
    const err = el("div", { class: "error", id: "svc-error", role: "alert" });
    const details = el("dl", { id: "svc-inspect" });
    api("GET", "/api/services/" + encodeURIComponent(name)).then(d => {
      const row = (k, v) => [el("dt", { text: k }), el("dd", { text: v === undefined || v === "" ? "—" : v })];
      // The state shows once, above, where live updates keep it current.
      const ports = (d.ports || []).map(p => p.hostAddress && d.state === "running"
        ? el("div", {}, p.name + " ", el("a", { class: "port-link", href: portURL(d, p), target: "_blank", rel: "noopener", text: p.hostAddress }))
        : el("div", { text: p.name + " " + (p.hostAddress || p.servicePort) }));
      details.replaceChildren(...row("Runtime", d.runtime), ...row("Source", d.source),
        el("dt", { text: "Ports" }), el("dd", { id: "svc-ports" }, ports.length ? ports : "—"),
        ...row("Mounts", (d.mounts || []).map(m => m.hostPath + " → " + m.runtimePath).join(", ")),
        ...row("Restarts", d.restarts), ...row("Restart policy", d.restartPolicy), ...row("Last error", d.lastError),
        ...row("Artifact", d.artifactSha256), ...row("Data folder", d.dataDir), ...row("Started", d.startedAt));
    }).catch(e => { err.textContent = e.message; });
    return [el("h1", {}, "Service ", el("code", { text: name })),
      el("section", {}, s ? el("div", { class: "row" }, el("span", { class: "state state-" + s.state, id: "svc-state", text: s.state }), serviceButtons(s, err)) : null, err, details),
      el("section", {}, el("h2", { text: "Logs (live)" }), logPane(name))];
  },
  devices() {
    const err = el("div", { class: "error", id: "device-error", role: "alert" });
    const peer = el("input", { id: "dev-peer", placeholder: "12D3KooW…", required: true, size: 52, "aria-label": "Peer ID" });
    const alias = el("input", { id: "dev-alias", placeholder: "alias", required: true, "aria-label": "Alias" });
    const addr = el("input", { id: "dev-addr", placeholder: "/ip4/…/tcp/4433 (optional)", size: 36, "aria-label": "Address" });
    const form = el("form", { id: "device-add", onsubmit: ev => { ev.preventDefault(); act(err, async () => {
      await api("POST", "/api/devices", { peerId: peer.value.trim(), alias: alias.value.trim(), addrs: addr.value.trim() ? [addr.value.trim()] : [] });
      peer.value = alias.value = addr.value = "";
    }); } }, el("div", { class: "row" }, peer, alias, addr, el("button", { type: "submit", class: "primary" }, "Add device")), err);
    return [el("h1", { text: "Devices" }), pairSection(),
      el("section", { id: "pending-section" }, el("h2", { text: "Devices that want to connect" }),
        el("div", { id: "pending-slot" }, pendingTable(state.pending))),
      el("section", {}, el("h2", { text: "Add a device by peer ID" }), form),
      el("section", {}, el("div", { id: "devices-slot" }, devicesTable(state.devices)))];
  },
  device(id) {
    const err = el("div", { class: "error", id: "catalog-error", role: "alert" });
    const body = el("div", { id: "catalog" }, el("p", { class: "muted", text: "Asking the peer…" }));
    api("GET", "/api/devices/" + encodeURIComponent(id) + "/catalog").then(c => {
      const list = c.services || [];
      if (!list.length) { body.replaceChildren(el("p", { class: "muted", text: "The peer publishes no services." })); return; }
      body.replaceChildren(el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Service ID", "Name", "Usage", "Ports", "State", ""].map(h => el("th", { scope: "col", text: h })))),
        el("tbody", {}, list.map(s => {
          const rowErr = el("div", { class: "error" });
          const attach = async (open) => {
            const e = await api("POST", "/api/access/attach", { device: id, serviceId: s.serviceId });
            if (open) window.open(e.url || "http://" + e.ports[0].localAddress + (e.path || "/"), "_blank", "noopener");
          };
          return el("tr", { "data-service-id": s.serviceId },
            el("td", { text: s.serviceId }), el("td", { text: s.displayName }), el("td", { text: s.usage }),
            el("td", { text: (s.ports || []).map(p => p.name).join(", ") }), el("td", { text: s.state }),
            el("td", {}, el("button", { "data-action": "attach", onclick: () => act(rowErr, () => attach(false)) }, "Attach"),
              s.usage === "web" ? el("button", { "data-action": "open", onclick: () => act(rowErr, () => attach(true)) }, "Open") : null, rowErr));
        })))));
    }).catch(e => { body.replaceChildren(); err.textContent = e.message; });
    const d = (state.devices || []).find(x => x.peerId === id || x.alias === id);
    return [el("h1", {}, "Catalog of ", el("code", { text: d ? d.alias : id })), el("section", {}, err, body)];
  },
  overview() {
    return [el("h1", { text: "All devices' services" }), overviewSection()];
  },
  access() {
    return [el("h1", { text: "Access" }), el("section", {}, el("div", { id: "access-slot" }, accessTable(state.access)))];
  },
  connections() {
    return [el("h1", { text: "Connections" }), el("section", {}, el("div", { id: "connections-slot" }, connectionsTable(state.connections)))];
  },
};

// Every device's services in one table, as `fungi service list
// --all-devices` prints them: a device that does not answer shows its last
// answer, marked with its age.
function overviewSection() {
  const err = el("div", { class: "error", id: "overview-error", role: "alert" });
  const body = el("div", { id: "overview" }, el("p", { class: "muted", text: "Asking the devices…" }));
  const load = refresh => api("GET", "/api/overview" + (refresh ? "?refresh=1" : "")).then(res => {
    err.textContent = "";
    const rows = [];
    for (const d of res.devices || []) {
      let name = d.self ? "this node" : (d.alias || d.peerId);
      if (!d.live) name += d.cachedAt ? " (offline, cached " + ageText(Number(d.ageSeconds)) + " ago)" : " (offline, never answered)";
      const access = s => ((d.access || []).find(a => a.serviceId === ((s.expose && s.expose.serviceId) || s.name)) || { ports: [] }).ports.map(p => p.name + " " + p.localAddress).join(", ") || "—";
      const services = d.services || [];
      if (!services.length) rows.push(el("tr", { "data-peer": d.peerId, class: d.live ? "" : "cached" }, el("td", { text: name }), el("td", { text: "—" }), el("td", { text: "—" }), el("td", { text: "—" }), el("td", { text: "—" })));
      for (const s of services) rows.push(el("tr", { "data-peer": d.peerId, "data-key": d.peerId + "/" + s.name, class: d.live ? "" : "cached", title: d.live ? null : d.error },
        el("td", { text: name }), el("td", { text: s.name }), el("td", { class: "state state-" + s.state, text: d.live ? s.state : s.state + "?" }),
        el("td", { text: (s.ports || []).map(p => p.name + " " + (p.hostAddress || "")).join(", ") || "—" }), el("td", { text: access(s) })));
    }
    body.replaceChildren(el("div", { class: "table-wrap" }, el("table", { id: "overview-table" },
      el("thead", {}, el("tr", {}, ["Device", "Service", "State", "Ports", "Access here"].map(h => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows))));
  }).catch(e => { err.textContent = e.message; });
  load(false);
  return el("section", {}, el("div", { class: "row" }, el("button", { id: "overview-refresh", onclick: () => load(true) }, "Refresh (dial offline devices)")), err, body);
}

function ageText(sec) {
  if (sec < 60) return sec + "s";
  if (sec < 3600) return Math.floor(sec / 60) + "m";
  if (sec < 172800) return Math.floor(sec / 3600) + "h";
  return Math.floor(sec / 86400) + "d";
}

function accessTable(list) {
  if (!list) return el("p", { class: "muted", text: "Loading…" });
  if (!list.length) return el("p", { class: "muted", text: "No access entries: attach a service from a device's catalog." });
  return el("div", { class: "table-wrap" }, el("table", { id: "access" },
    el("thead", {}, el("tr", {}, ["Peer", "Service ID", "Name", "Local addresses", ""].map(h => el("th", { scope: "col", text: h })))),
    el("tbody", {}, list.map(a => {
      const err = el("div", { class: "error" });
      return el("tr", { "data-service-id": a.serviceId, "data-key": a.peerId + "/" + a.serviceId },
        el("td", { text: a.alias || a.peerId }), el("td", { text: a.serviceId }),
        el("td", {}, a.url ? el("a", { class: "name-link", href: a.url, target: "_blank", rel: "noopener", text: a.name }) : el("code", { text: a.name || "—" })),
        el("td", {}, (a.ports || []).map(p => el("div", {}, p.name + " ", a.usage === "web"
          ? el("a", { class: "access-link", href: "http://" + p.localAddress + (a.path || "/"), target: "_blank", rel: "noopener", text: p.localAddress })
          : el("code", { text: p.localAddress })))),
        el("td", {}, el("button", { "data-action": "detach", onclick: () => act(err, () => api("POST", "/api/access/detach", { device: a.peerId, serviceId: a.serviceId })) }, "Detach"), err));
    }))));
}

function connectionsTable(list) {
  if (!list) return el("p", { class: "muted", text: "Loading…" });
  if (!list.length) return el("p", { class: "muted", text: "No open peer connections." });
  return el("div", { class: "table-wrap" }, el("table", { id: "connections" },
    el("thead", {}, el("tr", {}, ["Peer", "Direction", "Path", "Transport", "RTT", "Remote address"].map(h => el("th", { scope: "col", text: h })))),
    el("tbody", {}, list.map(c => el("tr", { "data-peer": c.peerId },
      el("td", { text: c.alias || c.peerId }), el("td", { text: c.direction }), el("td", { text: c.relayed ? "relayed" : "direct" }),
      el("td", { text: c.transport }), el("td", { text: c.rttMs ? c.rttMs.toFixed(1) + " ms" : "—" }), el("td", { class: "mono", text: c.remoteAddr }))))));
}

// A new alias typed or a role chosen, not yet sent, survives the table's
// redraws (a connection coming or going redraws it), so Trust sends the role
// the user picked.
const drafts = {};

function devicesTable(list) {
  if (!list) return el("p", { class: "muted", text: "Loading…" });
  if (!list.length) return el("p", { class: "muted", text: "No devices yet." });
  const conns = state.connections || [];
  return el("div", { class: "table-wrap" }, el("table", { id: "devices" },
    el("thead", {}, el("tr", {}, ["Alias", "Peer ID", "Its role here", "Online", "Path", "RTT", "Actions"].map(h => el("th", { scope: "col", text: h })))),
    el("tbody", {}, list.map(d => {
      const err = el("div", { class: "error" });
      const c = conns.find(x => x.peerId === d.peerId);
      const draft = drafts[d.peerId] || (drafts[d.peerId] = {});
      // The cell's HTML shows the device as the daemon has it (a live
      // update redraws the cell when that changes); the user's unsent
      // draft is in the fields' values.
      const rename = el("input", { class: "alias-input", value: d.alias, size: 12, "aria-label": "New alias for " + d.alias,
        oninput: () => { draft.alias = rename.value; } });
      const role = el("select", { class: "role-select", "aria-label": "Role for " + d.alias, onchange: () => { draft.role = role.value; } },
        ["access", "admin"].map(r => el("option", { value: r, selected: r === d.role }, r)));
      if (draft.alias !== undefined) rename.value = draft.alias;
      if (draft.role || d.role) role.value = draft.role || d.role;
      const post = (what, body, done) => act(err, async () => {
        await api("POST", "/api/devices/" + encodeURIComponent(d.peerId) + "/" + what, body);
        if (done) done();
      });
      return el("tr", { "data-peer": d.peerId },
        el("td", {}, el("a", { href: "#/device/" + encodeURIComponent(d.peerId), class: "catalog-link", text: d.alias })),
        el("td", { class: "mono", text: d.peerId }),
        // The role this node gives the device; "none" says nothing of what
        // this node may do there (a device you administer may use nothing here).
        el("td", { class: "role", title: d.role ? null : "It may not use this node; what this node may do there is up to it", text: d.role || "none" }),
        el("td", { class: d.connected ? "online" : "offline", text: d.connected ? "online" : "offline" }),
        el("td", { text: c ? (c.relayed ? "relayed" : "direct") : "—" }),
        el("td", { text: c && c.rttMs ? c.rttMs.toFixed(1) + " ms" : "—" }),
        el("td", {}, el("div", { class: "row" }, rename, el("button", { "data-action": "rename", onclick: () => post("rename", { alias: rename.value.trim() }, () => { delete draft.alias; }) }, "Rename")),
          el("div", { class: "row" }, role, el("button", { "data-action": "trust", onclick: () => post("trust", { role: role.value }, () => { delete draft.role; }) }, "Trust"),
            el("button", { "data-action": "untrust", onclick: () => post("untrust") }, "Untrust"),
            el("button", { "data-action": "remove", onclick: () => { if (confirm("Remove " + d.alias + "?")) post("remove"); } }, "Remove")), err));
    }))));
}

// Live updates redraw whole lists. The keyboard's focus is remembered by
// place (its row, and its rank among the row's controls of its kind: a port
// link appearing does not move the buttons), not by node, so it
// comes back to the same spot: Start turning into Stop keeps the focus, and
// a keyboard user is not sent back to the top of the page.
const focusable = "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])";
const sameKind = (scope, tag) => [...scope.querySelectorAll(focusable)].filter(x => x.tagName === tag);
const rowKey = r => r.dataset.key || r.dataset.service || r.dataset.peer || r.dataset.serviceId;

function focusPlace(container) {
  const a = document.activeElement;
  if (!a || a === document.body || !container.contains(a)) return null;
  if (a.id) return { id: a.id };
  const row = a.closest("tr");
  const scope = row && rowKey(row) ? row : container;
  const p = { row: scope === container ? null : rowKey(scope), tag: a.tagName, i: sameKind(scope, a.tagName).indexOf(a) };
  if (a.tagName === "INPUT" || a.tagName === "TEXTAREA") { p.value = a.value; p.sel = [a.selectionStart, a.selectionEnd]; }
  return p;
}

function restoreFocus(container, p) {
  if (!p) return;
  let e = null;
  if (p.id) e = document.getElementById(p.id);
  else {
    const scope = p.row === null ? container : [...container.querySelectorAll("tr")].find(r => rowKey(r) === p.row);
    if (scope) e = sameKind(scope, p.tag)[p.i] || null;
  }
  // Its row gone (removed), the focus stays in the page's content.
  if (!e) { document.getElementById("main").focus({ preventScroll: true }); return; }
  if (p.value !== undefined && e.value !== p.value) e.value = p.value;
  e.focus({ preventScroll: true });
  if (p.sel && e.setSelectionRange) try { e.setSelectionRange(p.sel[0], p.sel[1]); } catch (err) { /* not a text field */ }
}

function replaceKeepingFocus(container, ...content) {
  const p = focusPlace(container);
  container.replaceChildren(...content);
  restoreFocus(container, p);
}

// patchSlot shows a live update of a list in place. A row whose cells did
// not change is the very same element afterwards, and so is a cell that
// did not change in a row that did (an RTT): a click under way on it, the
// focus in it or text typed into it is not lost to an update about
// something else. Only changed cells are redrawn; a cell's handlers use
// nothing but what its HTML shows and its row's key, so a kept cell acts as
// a redrawn one would.
function patchSlot(slot, content) {
  const table = slot.querySelector("table"), next = content.querySelector ? content.querySelector("table") : null;
  if (!table || !next || table.id !== next.id || table.tHead.outerHTML !== next.tHead.outerHTML) {
    replaceKeepingFocus(slot, content);
    return;
  }
  const p = focusPlace(slot);
  const body = table.tBodies[0];
  const old = new Map([...body.rows].map(r => [rowKey(r), r]));
  const rows = [...next.tBodies[0].rows].map(nr => {
    const or = old.get(rowKey(nr));
    if (!or || or.cells.length !== nr.cells.length) return nr;
    old.delete(rowKey(nr));
    const oc = [...or.cells], nc = [...nr.cells];
    oc.forEach((c, i) => { if (drawn(c) !== drawn(nc[i])) c.replaceWith(nc[i]); });
    return or;
  });
  for (const r of old.values()) r.remove();
  rows.forEach((r, i) => { if (body.rows[i] !== r) body.insertBefore(r, body.rows[i] || null); });
  if (!slot.contains(document.activeElement)) restoreFocus(slot, p);
}

let logSource = null;
function logPane(name) {
  const pre = el("pre", { class: "logs", id: "svc-logs", tabindex: "0", "aria-label": "Log output" });
  if (logSource) logSource.close();
  logSource = new EventSource("/api/services/" + encodeURIComponent(name) + "/logs");
  logSource.addEventListener("log", ev => {
    const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(JSON.parse(ev.data));
    if (stick) pre.scrollTop = pre.scrollHeight;
  });
  return pre;
}

function route() {
  const h = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [page, ...rest] = h.split("/");
  const arg = rest.join("/");
  if (page !== "service" && logSource) { logSource.close(); logSource = null; }
  return { page: pages[page] && page !== "home" ? page : "home", arg };
}

let current = "";
function render(force) {
  const r = route();
  const key = r.page + "/" + r.arg;
  // A service page keeps its log pane; only its header re-renders.
  if (!force && key === current && r.page === "service") {
    const s = (state.services || []).find(x => x.name === r.arg);
    const st = document.getElementById("svc-state");
    if (s && st && st.textContent !== s.state) { current = ""; render(true); }
    return;
  }
  if (!force && key === current && r.page === "device") return;
  current = key;
  const main = document.getElementById("main");
  replaceKeepingFocus(main, ...pages[r.page](r.arg));
  for (const a of document.querySelectorAll("nav a")) {
    const target = a.getAttribute("href").replace(/^#\/?/, "") || "home";
    if (target === r.page || (r.page === "device" && target === "devices") || (r.page === "service" && target === "home")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function follow() {
  const es = new EventSource("/api/events");
  const live = document.getElementById("live");
  for (const [name, field] of [["services", "services"], ["devices", "devices"], ["connections", "connections"], ["access", "entries"], ["pending", "devices"]]) {
    es.addEventListener(name, ev => {
      state[name] = JSON.parse(ev.data)[field] || [];
      live.textContent = "";
      // Tests and styles can tell that updates flow.
      document.documentElement.dataset.events = "on";
      const r = route();
      const slot = (id, content) => { const e = document.getElementById(id); if (e) patchSlot(e, content); };
      // Lists re-render in their slot, so forms being filled in stay as they are.
      if (r.page === "home" && name === "services") slot("services-slot", servicesTable(state.services));
      else if (r.page === "devices" && (name === "devices" || name === "connections")) slot("devices-slot", devicesTable(state.devices));
      else if (r.page === "service" && name === "services") render(false);
      else if (r.page === "access" && name === "access") slot("access-slot", accessTable(state.access));
      else if (r.page === "devices" && name === "pending") slot("pending-slot", pendingTable(state.pending));
      else if (r.page === "connections" && name === "connections") slot("connections-slot", connectionsTable(state.connections));
    });
  }
  // Nothing shows while updates flow; a lost stream says so.
  es.onerror = () => { live.textContent = "updates paused, reconnecting…"; document.documentElement.dataset.events = "off"; };
  es.onopen = () => { live.textContent = ""; };
}

async function start() {
  try {
    state.csrf = (await api("GET", "/api/session")).csrf;
    const [node, services] = await Promise.all([api("GET", "/api/node"), api("GET", "/api/services")]);
    state.node = node;
    state.services = services.services || [];
  } catch (e) {
    document.getElementById("main").replaceChildren(el("p", { class: "error", text: e.message }));
    return;
  }
  render(true);
  // The time from the navigation (the login link included) to the first
  // services table; the browser test reports it.
  window.fungiFirstPaint = performance.now();
  // A new page takes the focus into its content, so the next Tab goes
  // there rather than on through the nav.
  window.addEventListener("hashchange", () => { render(true); document.getElementById("main").focus({ preventScroll: true }); });
  follow();
}
start();
