// meshd's status page. One live stream (Server-Sent Events) brings the
// whole fleet when it opens, then only what changed; the page keeps its
// rows in a map. The table puts in the document only the rows in view
// (and a screen's worth either side), between two spacers: a thousand
// rows laid out and painted on every update cost the browser a third of
// a core, the rows in view a fraction of it.
"use strict";

const HEALTHS = ["HEALTHY", "DEGRADED", "DOWN", "UNKNOWN"];
const $ = (id) => document.getElementById(id);

const fleet = new Map(); // id -> row
const trs = new Map(); // id -> <tr>
let events = []; // newest last
let alerts = { alerts: [], open: 0 }; // the open route alerts, newest first
let lastSeq = 0;
let sortKey = "router", sortDesc = false;
let dirty = false, eventsDirty = false, alertsDirty = false;
let rowH = 26; // a row's height in pixels, measured once rows are shown
const collator = new Intl.Collator(undefined, { numeric: true });
let watching = null; // the session shown, or null
let series = null; // its history (columns)
let plots = [];
let stream = null;
let lastMessage = 0;

// The page's own figures, for its benchmark: lags are the last row
// updates' times from the merge core's publishing to their arrival here.
window.meshdPage = { updates: 0, applyMs: 0, renderMs: 0, renders: 0, lastRender: 0, lags: [] };

// ---- the live stream ----

function connect() {
  if (stream) stream.close();
  let url = "api/status/stream";
  if (watching) url += "?session=" + encodeURIComponent(watching);
  const es = new EventSource(url);
  stream = es;
  setConn("connecting");
  es.onopen = () => setConn("live");
  es.onerror = () => setConn("reconnecting");
  es.addEventListener("fleet", (e) => {
    const t0 = performance.now();
    const m = JSON.parse(e.data);
    fleet.clear();
    for (const r of m.rows) fleet.set(r.id, r);
    for (const [id, tr] of trs) if (!fleet.has(id)) { tr.remove(); trs.delete(id); }
    events = [];
    lastSeq = 0;
    addEvents(m.events || []);
    stamp(t0);
    schedule();
  });
  es.addEventListener("rows", (e) => {
    const t0 = performance.now();
    const m = JSON.parse(e.data);
    const now = Date.now(), lags = window.meshdPage.lags;
    for (const r of m.rows || []) {
      fleet.set(r.id, r);
      if (r.changed_ms) lags.push(now - r.changed_ms);
    }
    if (lags.length > 5000) lags.splice(0, lags.length - 5000);
    for (const id of m.removed || []) fleet.delete(id);
    window.meshdPage.updates += (m.rows || []).length + (m.removed || []).length;
    stamp(t0);
    schedule();
  });
  es.addEventListener("alerts", (e) => {
    alerts = JSON.parse(e.data);
    alertsDirty = true;
    schedule();
  });
  es.addEventListener("events", (e) => {
    addEvents(JSON.parse(e.data));
    schedule();
  });
  es.addEventListener("cluster", (e) => {
    const m = JSON.parse(e.data);
    const b = $("cluster");
    const u = m.unreachable || [];
    b.hidden = u.length === 0;
    b.textContent = u.length ? `Not shown: the sessions of the replicas at ${u.join(", ")}, which do not answer.` : "";
  });
  es.addEventListener("points", (e) => {
    const m = JSON.parse(e.data);
    if (m.id !== watching) return;
    appendSeries(m.series);
  });
}

function stamp(t0) {
  lastMessage = Date.now();
  window.meshdPage.applyMs += performance.now() - t0;
}

function setConn(state) {
  const c = $("conn");
  c.dataset.state = state;
  c.textContent = state;
}

function addEvents(list) {
  for (const ev of list) {
    if (ev.seq <= lastSeq) continue; // sent again after a snapshot
    lastSeq = ev.seq;
    events.push(ev);
  }
  if (events.length > 2000) events = events.slice(events.length - 2000);
  eventsDirty = true;
}

let frame = 0;
function schedule() {
  dirty = true;
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  const t0 = performance.now();
  renderCounts();
  if (watching) renderSessionRow();
  else renderFleet();
  if (eventsDirty) renderEvents();
  if (alertsDirty && !watching) renderAlerts();
  eventsDirty = false;
  dirty = false;
  const p = window.meshdPage;
  p.renderMs += performance.now() - t0;
  p.renders++;
  p.lastRender = Date.now();
}

// ---- the fleet ----

const num = (v) => (v === undefined || v === null ? 0 : v);
const ms = (us) => (us ? (us / 1000).toFixed(2) : "");
const health = (r) => (HEALTHS.includes(r.health) ? r.health : "UNKNOWN");

function filters() {
  return {
    text: $("f-router").value.trim().toLowerCase(),
    as: $("f-as").value.trim(),
    state: $("f-state").value,
    health: $("f-health").value,
  };
}

function keep(r, f) {
  if (f.text && !(r.router.toLowerCase().includes(f.text) || r.neighbor.toLowerCase().includes(f.text))) return false;
  if (f.as && String(num(r.peer_as)) !== f.as) return false;
  if (f.state === "!ESTABLISHED" && r.session_state === "ESTABLISHED") return false;
  if (f.state && f.state !== "!ESTABLISHED" && r.session_state !== f.state) return false;
  if (f.health && health(r) !== f.health) return false;
  return true;
}

function compare(a, b) {
  let x, y;
  switch (sortKey) {
    case "router": x = 0; y = 0; break;
    case "neighbor": x = collator.compare(a.neighbor, b.neighbor); y = 0; break;
    case "session_state": case "health": x = a[sortKey] || ""; y = b[sortKey] || ""; break;
    default: x = num(a[sortKey]); y = num(b[sortKey]);
  }
  // Ties, and the router order, by ID with numbers in names and
  // addresses compared as numbers (10.0.0.2 before 10.0.0.10).
  const c = x < y ? -1 : x > y ? 1 : collator.compare(a.id, b.id);
  return sortDesc ? -c : c;
}

function renderCounts() {
  const c = { HEALTHY: 0, DEGRADED: 0, DOWN: 0, UNKNOWN: 0 };
  const routers = new Set();
  for (const r of fleet.values()) { c[health(r)]++; routers.add(r.router); }
  const parts = [`<span class="count" data-health=""><b>${routers.size}</b> routers</span>`,
    `<span class="count" data-health=""><b>${fleet.size}</b> sessions</span>`];
  for (const h of HEALTHS) parts.push(`<span class="count ${h}" data-health="${h}"><b>${c[h]}</b> ${h.toLowerCase()}</span>`);
  // Fleet-wide figures of routing security: the open alerts, and the
  // RPKI-invalid routes summed over sessions (a route two sessions
  // carry counts twice), where meshd validates routes.
  parts.push(`<span class="count alerts${alerts.open ? " open" : ""}" id="count-alerts"><b>${alerts.open}</b> open alerts</span>`);
  let invalid = null;
  for (const r of fleet.values()) if (r.rpki_invalid !== undefined) invalid = (invalid || 0) + r.rpki_invalid;
  if (invalid !== null) parts.push(`<span class="count rpki${invalid ? " open" : ""}" id="count-rpki"><b>${invalid}</b> RPKI-invalid routes</span>`);
  const html = parts.join("");
  if ($("counts").innerHTML !== html) $("counts").innerHTML = html;
}

function cell(tr, i, text, title) {
  const td = tr.children[i];
  if (td.textContent !== text) td.textContent = text;
  if (title !== undefined && td.title !== title) td.title = title;
}

function makeTr(id) {
  const tr = document.createElement("tr");
  tr.className = "session";
  tr.dataset.id = id;
  for (let i = 0; i < 13; i++) {
    const td = document.createElement("td");
    if ([2, 5, 6, 7, 8, 9, 10, 11].includes(i)) td.className = "num";
    tr.appendChild(td);
  }
  const b = document.createElement("span");
  b.className = "badge";
  tr.children[4].appendChild(b);
  tr.addEventListener("click", () => { location.hash = "#/session/" + encodeURIComponent(id); });
  return tr;
}

function fillTr(tr, r) {
  const h = health(r);
  const cls = "session " + h;
  if (tr.className !== cls) tr.className = cls;
  cell(tr, 0, r.router);
  cell(tr, 1, r.network_instance && r.network_instance !== "default" ? r.network_instance + "/" + r.neighbor : r.neighbor);
  cell(tr, 2, r.peer_as ? String(r.peer_as) : "");
  cell(tr, 3, r.session_state || "");
  const b = tr.children[4].firstChild;
  if (b.textContent !== h) { b.textContent = h; b.className = "badge " + h; }
  tr.children[4].title = r.reason || "";
  cell(tr, 5, String(num(r.flaps)));
  cell(tr, 6, ms(r.rtt_us), r.rtt_us ? `min ${ms(r.rtt_min_us)} p50 ${ms(r.rtt_p50_us)} p99 ${ms(r.rtt_p99_us)}` : "");
  cell(tr, 7, ms(r.jitter_us));
  cell(tr, 8, r.rtt_us || r.losses ? String(num(r.losses)) : "");
  cell(tr, 9, r.hops ? String(r.hops) : "");
  cell(tr, 10, prefixes(r));
  cell(tr, 11, r.rpki_invalid === undefined ? "" : String(r.rpki_invalid),
    r.rpki_invalid_pre_policy === undefined ? "" : `pre-policy: ${r.rpki_invalid_pre_policy}`);
  cell(tr, 12, r.sources || "", r.replica ? "collected by the replica at " + r.replica : "");
}

// prefixes shows post-policy received, with pre-policy after it when a
// source reported it (never their sum).
function prefixes(r) {
  let post = null, pre = null;
  for (const c of Object.values(r.afi_safis || {})) {
    if (c.received !== undefined) post = (post || 0) + c.received;
    if (c.received_pre_policy !== undefined) pre = (pre || 0) + c.received_pre_policy;
  }
  if (post === null && pre === null) return "";
  return (post === null ? "-" : String(post)) + (pre === null ? "" : " / " + pre + " pre");
}

function spacer(tr, px) {
  const td = tr.firstChild;
  const h = px + "px";
  if (td.style.height !== h) td.style.height = h;
  return tr;
}

function makeSpacer() {
  const tr = document.createElement("tr");
  tr.className = "spacer";
  const td = document.createElement("td");
  td.colSpan = 13;
  tr.appendChild(td);
  return tr;
}
const above = makeSpacer(), below = makeSpacer();

function renderFleet() {
  const f = filters();
  const rows = [];
  for (const r of fleet.values()) if (keep(r, f)) rows.push(r);
  rows.sort(compare);
  const grouped = sortKey === "router" && !sortDesc;
  const items = [];
  let router = null;
  for (const r of rows) {
    if (grouped && r.router !== router) {
      router = r.router;
      items.push({ head: router });
    }
    items.push(r);
  }
  // The rows in view, and a screen's worth either side.
  const table = $("sessions");
  const tbody = table.tBodies[0];
  const bodyTop = table.getBoundingClientRect().top + table.tHead.offsetHeight;
  const screen = Math.ceil(window.innerHeight / rowH);
  const first = Math.max(0, Math.floor(-bodyTop / rowH) - screen);
  const last = Math.min(items.length, Math.max(0, Math.ceil((window.innerHeight - bodyTop) / rowH)) + screen);
  const want = [spacer(above, first * rowH)];
  for (let i = first; i < last; i++) {
    const it = items[i];
    if (it.head) { want.push(routerHead(it.head)); continue; }
    let tr = trs.get(it.id);
    if (!tr) { tr = makeTr(it.id); trs.set(it.id, tr); }
    fillTr(tr, it);
    want.push(tr);
  }
  want.push(spacer(below, Math.max(0, items.length - Math.max(first, last)) * rowH));
  for (const id of trs.keys()) if (!fleet.has(id)) trs.delete(id);
  // Move rows only where the order differs, so an update that changes
  // no order touches no row's place.
  let node = tbody.firstChild;
  for (const el of want) {
    if (node === el) { node = node.nextSibling; continue; }
    tbody.insertBefore(el, node);
  }
  while (node) { const next = node.nextSibling; node.remove(); node = next; }
  const shown = tbody.querySelector("tr.session");
  if (shown) {
    const h = shown.getBoundingClientRect().height;
    if (h > 0 && Math.abs(h - rowH) > 0.5) { rowH = h; schedule(); }
  }
  $("shown").textContent = rows.length === fleet.size ? "" : `${rows.length} of ${fleet.size} shown`;
  table.dataset.sessions = String(rows.length);
}

const heads = new Map();
function routerHead(name) {
  let tr = heads.get(name);
  if (!tr) {
    tr = document.createElement("tr");
    tr.className = "router-head";
    const td = document.createElement("td");
    td.colSpan = 13;
    td.textContent = name;
    tr.appendChild(td);
    heads.set(name, tr);
  }
  return tr;
}

// ---- alerts ----

function renderAlerts() {
  alertsDirty = false;
  const box = $("alerts");
  box.hidden = alerts.open === 0;
  $("alerts-count").textContent = alerts.open > alerts.alerts.length ? `(${alerts.alerts.length} newest of ${alerts.open})` : `(${alerts.open})`;
  const tbl = $("alerts-table");
  const head = ["opened", "kind", "router", "seen from", "prefix", "watched", "origin AS", "detail"];
  const trs = alerts.alerts.map((a) => {
    const tr = document.createElement("tr");
    tr.className = "alert " + a.kind;
    tr.dataset.id = a.id;
    tr.dataset.router = a.router;
    const opened = a.opened_ms ? new Date(a.opened_ms) : null;
    const from = a.neighbor ? `${a.network_instance && a.network_instance !== "default" ? a.network_instance + "/" : ""}${a.neighbor}${a.rib ? " " + a.rib : ""}` : "";
    const cells = [opened ? opened.toLocaleTimeString() : "", a.kind, a.router + (a.replica ? ` (${a.replica})` : ""), from,
      a.prefix || "", a.watched_prefix || "", a.origin_as ? String(a.origin_as) : "", a.detail || ""];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.appendChild(td);
    }
    if (opened) tr.children[0].title = opened.toString();
    if (a.description) tr.children[5].title = a.description;
    if (a.neighbor) {
      const id = [a.router, a.network_instance || "default", a.neighbor].join("|");
      tr.addEventListener("click", () => { location.hash = "#/session/" + encodeURIComponent(id); });
    }
    return tr;
  });
  const hr = document.createElement("tr");
  for (const h of head) { const th = document.createElement("th"); th.textContent = h; hr.appendChild(th); }
  tbl.replaceChildren(hr, ...trs);
  tbl.dataset.alerts = String(alerts.open);
}

// ---- events ----

function describe(ev) {
  const f = ev.fields || {};
  switch (ev.kind) {
    case "peer_down": {
      let s = f.reason || "";
      if (f.notification) s += ` (${f.notification}${f.notification_subcode_name ? " / " + f.notification_subcode_name : ""})`;
      return s;
    }
    case "peer_up": return f.peer_as ? `AS ${f.peer_as}` : "";
    case "session_state": return `${f.old_state} \u2192 ${f.new_state}`;
    case "hop_change": return `hops ${f.old_hops} \u2192 ${f.new_hops}`;
    case "origin_change": return `${f.prefix} origin AS ${f.old_origin_as} \u2192 ${f.new_origin_as}${f.more_specific_of ? " (more specific of " + f.more_specific_of + ")" : ""}`;
    case "router_down": return f.reason || "";
    case "alert": return f.state === "open" ? `${f.kind} opened: ${f.detail}` : `${f.kind} cleared on ${f.prefix}: ${f.reason}`;
    default: return "";
  }
}

function eventLi(ev) {
  const li = document.createElement("li");
  li.className = ev.kind;
  const t = document.createElement("time");
  const d = new Date(ev.time);
  t.dateTime = ev.time;
  t.textContent = d.toLocaleTimeString();
  t.title = d.toString();
  li.appendChild(t);
  const k = document.createElement("span");
  k.className = "kind";
  k.textContent = ev.kind.replace("_", " ");
  li.appendChild(k);
  const who = document.createElement("a");
  if (ev.neighbor) {
    who.href = "#/session/" + encodeURIComponent([ev.router, ev.network_instance, ev.neighbor].join("|"));
    who.textContent = `${ev.router} ${ev.neighbor}`;
  } else {
    who.textContent = ev.router;
  }
  li.appendChild(who);
  const text = describe(ev);
  if (text) li.appendChild(document.createTextNode(" " + text));
  return li;
}

function renderEvents() {
  const kind = $("e-kind").value, router = $("e-router").value.trim().toLowerCase();
  const ol = $("timeline");
  const out = [];
  for (let i = events.length - 1; i >= 0 && out.length < 300; i--) {
    const ev = events[i];
    if (kind && ev.kind !== kind) continue;
    if (router && !ev.router.toLowerCase().includes(router)) continue;
    out.push(eventLi(ev));
  }
  ol.replaceChildren(...out);
  if (watching) renderSessionEvents();
}

// ---- one session ----

function sessionEvents() {
  const [router, ni, nbr] = watching.split("|");
  return events.filter((e) => e.router === router && e.network_instance === ni && e.neighbor === nbr);
}

function renderSessionEvents() {
  const list = sessionEvents().slice(-200).reverse().map(eventLi);
  $("s-events").replaceChildren(...list);
}

function renderSessionRow() {
  const r = fleet.get(watching);
  const s = $("s-summary");
  if (!r) { s.textContent = "meshd holds no such session now."; return; }
  const h = health(r);
  const items = [
    ["state", r.session_state || "?"], ["health", `<span class="badge ${h}">${h}</span>`], ["reason", esc(r.reason || "")],
    ["peer AS", r.peer_as || ""], ["flaps", num(r.flaps)], ["RTT ms (last / min / p50 / p99)", r.rtt_us ? `${ms(r.rtt_us)} / ${ms(r.rtt_min_us)} / ${ms(r.rtt_p50_us)} / ${ms(r.rtt_p99_us)}` : "no probe"],
    ["jitter ms", ms(r.jitter_us)], ["keepalives lost", num(r.losses)], ["hops", r.hops || ""], ["prefixes", prefixes(r)], ["sources", r.sources || ""],
  ];
  s.innerHTML = items.map(([k, v]) => `<div><span>${k}</span>${v}</div>`).join("");
  renderAfi(r);
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function table(el, head, rows) {
  if (!rows.length) { el.innerHTML = `<tr><td class="muted">none</td></tr>`; return; }
  el.innerHTML = `<tr>${head.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c === undefined || c === null ? "" : c)}</td>`).join("")}</tr>`).join("");
}

function renderAfi(r) {
  const rows = Object.entries(r.afi_safis || {}).sort().map(([afi, c]) =>
    [afi, c.received_pre_policy, c.received, c.installed, c.sent]);
  table($("s-afi"), ["AFI-SAFI", "received (pre-policy)", "received", "installed", "sent"], rows);
}

// leaf finds the value of path in the session's leaves.
function byPrefix(leaves, re) {
  const out = new Map();
  for (const l of leaves) {
    const m = l.path.match(re);
    if (!m) continue;
    if (!out.has(m[1])) out.set(m[1], {});
    out.get(m[1])[m[2]] = l.value;
  }
  return out;
}

function ns(v) { return v ? new Date(Number(v) / 1e6).toLocaleString() : ""; }

function renderDetail(d) {
  const leaves = d.leaves || [];
  const hist = byPrefix(leaves, /^meshd\/bmp\/history\/event\[sequence=(\d+)\]\/state\/(.+)$/);
  table($("s-history"), ["time", "", "reason"], [...hist.entries()].sort((a, b) => b[0] - a[0])
    .map(([, e]) => [ns(e.time), e.kind, e.reason || (e["reason-code"] !== undefined ? "code " + e["reason-code"] : "")]));
  const ribs = byPrefix(leaves, /^meshd\/bmp\/ribs\/rib\[view=([^\]]+)\]\/state\/(.+)$/);
  table($("s-ribs"), ["view", "prefixes", "announcements", "withdrawals", "origin changes"], [...ribs.entries()].sort()
    .map(([v, c]) => [v, c.prefixes, c.announcements, c.withdrawals, c["origin-changes"]]));
  const stats = byPrefix(leaves, /^meshd\/bmp\/stats\/counter\[type=(\d+)\]\/state\/(.+)$/);
  table($("s-stats"), ["type", "name", "value", "reported"], [...stats.entries()].sort((a, b) => a[0] - b[0])
    .map(([t, c]) => [t, c.name, c.value, ns(c["last-report"])]));
  const msgs = [["OPEN sent", d.open_sent], ["OPEN received", d.open_received], ["NOTIFICATION", d.notification]];
  $("s-messages").innerHTML = msgs.map(([k, m]) => `<h3>${k}</h3>` + (m
    ? `<p class="muted">${esc(new Date(m.time).toLocaleString())}</p><pre>${esc(Object.entries(m.fields).map(([a, b]) => `${a}: ${b}`).join("\n"))}</pre>`
    : `<p class="muted">none seen</p>`)).join("");
  table($("s-leaves"), ["path", "value", "source", "time"],
    leaves.map((l) => [l.path, typeof l.value === "object" ? JSON.stringify(l.value) : l.value, l.source, new Date(l.time).toLocaleString()]));
}

// ---- plots ----

function appendSeries(s) {
  if (!series) { series = s; drawPlots(); return; }
  for (let i = 0; i < s.t.length; i++) {
    const n = series.t.length;
    const at = n && series.t[n - 1] >= s.t[i] ? n - 1 : -1;
    if (at >= 0 && series.t[at] > s.t[i]) continue; // older than what is shown
    for (const k of Object.keys(series)) {
      if (at >= 0) series[k][at] = s[k][i];
      else series[k].push(s[k][i]);
    }
  }
  updatePlots();
}

function lossDiffs(s) {
  return s.losses.map((v, i) => (i === 0 ? 0 : Math.max(0, v - s.losses[i - 1])));
}

function hopChanges() {
  return sessionEvents().filter((e) => e.kind === "hop_change").map((e) => Date.parse(e.time) / 1000);
}

// markChanges draws a line at each hop change.
function markChanges(u) {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = "#b26a00";
  ctx.setLineDash([4, 3]);
  for (const t of hopChanges()) {
    const x = u.valToPos(t, "x", true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
  }
  ctx.restore();
}

function plotData() {
  const s = series;
  return [
    [s.t, s.rtt, s.rtt_min, s.rtt_p50, s.rtt_p99],
    [s.t, s.jitter],
    [s.t, lossDiffs(s)],
    [s.t, s.hops],
  ];
}

function drawPlots() {
  for (const p of plots) p.destroy();
  plots = [];
  const ids = ["p-rtt", "p-jitter", "p-loss", "p-hops"];
  if (typeof uPlot === "undefined") {
    for (const id of ids) $(id).innerHTML = `<div class="nochart">no chart library in this build (make fetches uPlot)</div>`;
    return;
  }
  const width = Math.max(480, $("p-rtt").clientWidth || 520);
  const line = (label, stroke, extra) => Object.assign({ label, stroke, width: 1.5, spanGaps: false }, extra || {});
  const specs = [
    [line("last", "#1f5fa8"), line("min", "#2e7d32"), line("p50", "#7a4fb0"), line("p99", "#c62828")],
    [line("jitter", "#b26a00")],
    [line("lost", "#c62828", { paths: uPlot.paths.bars({ size: [0.8, 8] }), fill: "#c6282855" })],
    [line("hops", "#1d1d1b", { paths: uPlot.paths.stepped({ align: 1 }) })],
  ];
  if (!series.t.length) {
    for (const id of ids) $(id).innerHTML = `<div class="nochart">no probe samples for this session in the last hour</div>`;
    return;
  }
  const data = plotData();
  ids.forEach((id, i) => {
    $(id).innerHTML = "";
    const opts = {
      width, height: 180,
      scales: { x: { time: true } },
      series: [{}].concat(specs[i]),
      axes: [{}, { size: 50 }],
      legend: { live: true },
    };
    if (i === 3) opts.hooks = { draw: [markChanges] };
    plots.push(new uPlot(opts, data[i], $(id)));
  });
}

function updatePlots() {
  if (plots.length !== 4) { drawPlots(); return; }
  const data = plotData();
  plots.forEach((p, i) => p.setData(data[i]));
}

// ---- views ----

async function showSession(id) {
  watching = id;
  series = null;
  $("fleet-view").hidden = true;
  $("session-view").hidden = false;
  const [router, ni, nbr] = id.split("|");
  $("s-title").textContent = `${router} \u2014 ${ni !== "default" ? ni + "/" : ""}${nbr}`;
  connect();
  await loadDetail();
}

async function loadDetail() {
  const id = watching;
  if (!id) return;
  try {
    const res = await fetch("api/status/session?id=" + encodeURIComponent(id));
    if (id !== watching) return;
    if (!res.ok) { $("s-summary").textContent = await res.text(); return; }
    const d = await res.json();
    renderDetail(d);
    // Another replica's session: its plots follow this read, not the
    // stream.
    const remote = (fleet.get(id) || {}).replica;
    if (!series || remote) { series = d.history; if (remote && plots.length === 4) updatePlots(); else drawPlots(); }
    schedule();
  } catch (e) {
    $("s-summary").textContent = "could not load the session: " + e;
  }
}

function showFleet() {
  watching = null;
  series = null;
  for (const p of plots) p.destroy();
  plots = [];
  $("session-view").hidden = true;
  $("fleet-view").hidden = false;
  connect();
}

function route() {
  const m = location.hash.match(/^#\/session\/(.+)$/);
  if (m) showSession(decodeURIComponent(m[1]));
  else showFleet();
}

// ---- wiring ----

document.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => {
  const k = th.dataset.sort;
  if (sortKey === k) sortDesc = !sortDesc;
  else { sortKey = k; sortDesc = !["router", "neighbor", "session_state", "health"].includes(k); }
  document.querySelectorAll("th[data-sort]").forEach((h) => h.classList.toggle("sorted", h.dataset.sort === sortKey));
  document.querySelectorAll("th[data-sort]").forEach((h) => h.classList.toggle("desc", h.dataset.sort === sortKey && sortDesc));
  schedule();
}));
for (const id of ["f-router", "f-as", "f-state", "f-health"]) $(id).addEventListener("input", schedule);
for (const id of ["e-kind", "e-router"]) $(id).addEventListener("input", () => { eventsDirty = true; schedule(); });
$("filters").addEventListener("submit", (e) => e.preventDefault());
$("counts").addEventListener("click", (e) => {
  const c = e.target.closest(".count");
  if (!c) return;
  if (c.id === "count-alerts" || c.id === "count-rpki") {
    if (c.id === "count-rpki") { sortKey = "rpki_invalid"; sortDesc = true; }
    if (watching) location.hash = "#/";
    else if (c.id === "count-alerts") $("alerts").scrollIntoView();
    schedule();
    return;
  }
  $("f-health").value = c.dataset.health;
  schedule();
});
window.addEventListener("hashchange", route);
window.addEventListener("scroll", () => { if (!watching) schedule(); }, { passive: true });
window.addEventListener("resize", schedule);
// A session's counters (stats, RIB views, history) are no part of the
// row the stream sends: its page reads them again every few seconds.
setInterval(() => { if (watching) loadDetail(); }, 5000);
if (typeof uPlot === "undefined") {
  const b = $("banner");
  b.hidden = false;
  b.textContent = "This meshd was built without its chart library: build it with make to see the plots.";
}
route();
