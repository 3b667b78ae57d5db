// abing's page: the paths (overview), one path's history with its alarms,
// and the mesh map. It reads the JSON API of the same listener
// (/api/v1/targets, /history, /alarms, /mesh); uPlot draws the plots.
// window.abing says what the page shows, for its tests.
"use strict";

const state = (window.abing = { view: "", ready: false });
const main = document.getElementById("main");
const windows = [["1h", "1 h"], ["6h", "6 h"], ["24h", "24 h"], ["168h", "7 d"], ["720h", "30 d"]];

async function api(path) {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k ?? ""));
  return e;
}

const num = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Number(v).toFixed(digits));
// Every time on the page is UTC, and says so.
const when = (t) => (t ? new Date(t).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "–");
// A capacity, or the bound a run gave when the path was faster than the
// host could resolve ("> 79.0").
const dbcText = (r) => (r?.dbc_mbps !== undefined && r?.dbc_mbps !== null ? num(r.dbc_mbps) : r?.dbc_min_mbps ? `> ${num(r.dbc_min_mbps)}` : "–");
// Why a path's last run gave no numbers, when it did not.
const lastError = (t) => t.forward?.error || t.reverse?.error || "";

function fail(err) {
  main.replaceChildren(el("p", { class: "error" }, String(err.message || err)));
  state.ready = true;
}

// The overview: every target and path with its last results, sortable.
async function overview() {
  const targets = await api("/api/v1/targets");
  const cols = [
    ["path", "name", (t) => t.key],
    ["address", "name", (t) => t.address],
    ["last run (UTC)", "", (t) => t.last],
    ["DBC → Mbit/s", "", (t) => t.forward?.dbc_mbps ?? t.forward?.dbc_min_mbps],
    ["ABW → Mbit/s", "", (t) => t.forward?.abw_mbps],
    ["± Mbit/s", "", (t) => half(t.forward)],
    ["XTR → Mbit/s", "", (t) => t.forward?.xtr_mbps],
    ["DBC ← Mbit/s", "", (t) => t.reverse?.dbc_mbps ?? t.reverse?.dbc_min_mbps],
    ["ABW ← Mbit/s", "", (t) => t.reverse?.abw_mbps],
    ["RTT ms", "", (t) => t.forward?.rtt_ms?.avg],
    ["loss %", "", (t) => (t.forward ? 100 * t.forward.loss : null)],
    ["link cost", "", (t) => t.link_cost],
    ["alarms", "name", (t) => t.alarms.length],
    ["last error", "name", lastError],
  ];
  let sortBy = 0, desc = false;
  const table = el("table", { id: "targets" });
  const draw = () => {
    const rows = [...targets].sort((a, b) => {
      const x = cols[sortBy][2](a), y = cols[sortBy][2](b);
      const c = x === y ? 0 : x === undefined || x === null ? 1 : y === undefined || y === null ? -1 : x < y ? -1 : 1;
      return desc ? -c : c;
    });
    const head = el("tr", {}, ...cols.map(([name, cls], i) =>
      el("th", { class: `${cls} ${i === sortBy ? (desc ? "sorted-desc" : "sorted-asc") : ""}`, onclick: () => {
        desc = i === sortBy ? !desc : false; sortBy = i; draw();
      } }, name)));
    table.replaceChildren(head, ...rows.map((t) => el("tr", { class: "target" },
      el("td", { class: "name" }, el("a", { href: `#/path/${encodeURIComponent(t.key)}` }, t.key)),
      el("td", { class: "name muted" }, t.address),
      el("td", {}, when(t.last)),
      el("td", { class: "dbc" }, dbcText(t.forward)), el("td", {}, num(t.forward?.abw_mbps)), el("td", { class: "muted" }, num(half(t.forward))),
      el("td", {}, num(t.forward?.xtr_mbps)),
      el("td", { class: "dbc" }, dbcText(t.reverse)), el("td", {}, num(t.reverse?.abw_mbps)),
      el("td", {}, num(t.forward?.rtt_ms?.avg, 2)),
      el("td", {}, t.forward ? num(100 * t.forward.loss) : "–"),
      el("td", {}, num(t.link_cost, 0)),
      el("td", { class: "name" }, ...t.alarms.map((a) => el("span", { class: `alarm ${a.severity}`, title: a.summary }, `${a.kind} ${a.direction}`))),
      el("td", { class: "name error-cell", title: lastError(t) }, lastError(t)))));
    state.rows = rows.length;
  };
  draw();
  main.replaceChildren(el("h2", {}, "Paths"), targets.length ? table : el("p", { class: "muted" }, "Nothing measured yet."));
  Object.assign(state, { view: "overview", rows: targets.length, ready: true });
}

function half(r) {
  if (!r || r.abw_low_mbps === undefined || r.abw_high_mbps === undefined) return null;
  return (r.abw_high_mbps - r.abw_low_mbps) / 2;
}

// One path: DBC, ABW with its band, XTR, and RTT over a window, alarm
// spans shaded, the routes of path and capacity alarms below.
async function pathPage(key, since, dir) {
  const slash = key.indexOf("/");
  const target = slash < 0 ? key : key.slice(0, slash), path = slash < 0 ? "" : key.slice(slash + 1);
  const q = `target=${encodeURIComponent(target)}&path=${encodeURIComponent(path)}&since=${since}`;
  // A path's alarms, and those of its whole target (a mesh member that
  // went down is named without a path).
  const [hist, own, whole, targets] = await Promise.all([api(`/api/v1/history?${q}`), api(`/api/v1/alarms?target=${encodeURIComponent(key)}&since=${since}`),
    path ? api(`/api/v1/alarms?target=${encodeURIComponent(target)}&since=${since}`) : [], api("/api/v1/targets")]);
  const alarms = [...own, ...whole];
  const latest = targets.find((x) => x.key === key);
  const last = dir === "forward" ? latest?.forward : latest?.reverse;
  const buckets = hist.buckets.filter((b) => b.direction === dir);
  const t = buckets.map((b) => Date.parse(b.time) / 1000 + hist.bucket_seconds / 2);
  const med = (f) => buckets.map((b) => (b[f] ? b[f][1] : null));
  const data = [t, med("dbc_mbps"), med("abw_mbps"), buckets.map((b) => b.abw_low_mbps), buckets.map((b) => b.abw_high_mbps), med("xtr_mbps")];
  const controls = el("div", { class: "controls" },
    ...windows.map(([w, label]) => el("button", { class: w === since ? "on" : "", onclick: () => go(key, w, dir) }, label)),
    " ",
    ...["forward", "reverse"].map((d) => el("button", { class: d === dir ? "on" : "", onclick: () => go(key, since, d) }, d)));
  const bwDiv = el("div", { class: "plot", id: "bw-plot" }), rttDiv = el("div", { class: "plot", id: "rtt-plot" });
  const list = el("ul", { class: "alarms" });
  // The last run of this direction: its bound, and why it gave no
  // numbers, if it did not.
  const status = el("p", { id: "last-run" });
  if (last) {
    status.append(`last run ${when(last.time)}: `, el("span", { class: "dbc" }, `DBC ${dbcText(last)} Mbit/s`));
    if (last.dbc_min_mbps && !last.dbc_mbps) status.append(" (the path was faster than this host could resolve: a lower bound)");
    if (last.error) status.append(el("br"), el("span", { class: "error" }, `error: ${last.error}`));
  }
  main.replaceChildren(el("h2", {}, key), controls, el("p", { class: "muted" },
    `${hist.runs} runs, ${buckets.length} buckets of ${hist.bucket_seconds} s (min, median, max on the server); times in UTC`), status, bwDiv, rttDiv,
    el("h3", {}, "Alarms"), list);
  const width = Math.max(600, main.clientWidth - 20);
  const since0 = Date.parse(hist.since) / 1000, until = Date.parse(hist.until) / 1000;
  // Zoomed to the data when it covers less than the window.
  const from = t.length ? Math.max(since0, t[0] - hist.bucket_seconds) : since0;
  const utc = (v) => new Date(v * 1000).toISOString().replace("T", " ");
  const xAxis = { label: "UTC", values: (u, splits) => (state.xTicks = splits.map((v) => (until - from > 86400 ? utc(v).slice(5, 16) : utc(v).slice(11, 16)))) };
  const xSeries = { value: (u, v) => (v === null || v === undefined ? "–" : utc(v).slice(0, 16) + " UTC") };
  const bw = new uPlot({
    width, height: 300, title: "Mbit/s",
    scales: { x: { time: true, range: [from, until] } }, axes: [xAxis, {}],
    series: [xSeries, { label: "DBC", stroke: "#1f3b57", width: 2 }, { label: "ABW", stroke: "#27ae60", width: 2 },
      { label: "ABW low", stroke: "rgba(39,174,96,.3)" }, { label: "ABW high", stroke: "rgba(39,174,96,.3)" },
      { label: "XTR", stroke: "#c0392b" }],
    bands: [{ series: [4, 3], fill: "rgba(39,174,96,.12)" }],
  }, data, bwDiv);
  new uPlot({
    width, height: 160, title: "RTT (ms)",
    scales: { x: { time: true, range: [from, until] } }, axes: [xAxis, {}],
    series: [xSeries, { label: "RTT median", stroke: "#8e44ad" }, { label: "RTT max", stroke: "rgba(142,68,173,.35)" }],
  }, [t, med("rtt_ms"), buckets.map((b) => (b.rtt_ms ? b.rtt_ms[2] : null))], rttDiv);
  // Alarm spans over the plot area, once uPlot has laid it out (it does
  // so after this task): an active alarm runs to now.
  await new Promise((resolve) => requestAnimationFrame(resolve));
  const spans = [];
  for (const a of alarms) {
    if (a.direction !== dir && a.direction !== "both") continue;
    const s = Math.max(Date.parse(a.start) / 1000, from), e = Math.min(a.end ? Date.parse(a.end) / 1000 : until, until);
    const left = bw.valToPos(s, "x"), right = bw.valToPos(e, "x");
    const span = el("div", { class: `alarm-span ${a.severity}`, "data-kind": a.kind, "data-start": a.start, title: a.summary });
    span.style.left = `${left}px`;
    span.style.width = `${Math.max(2, right - left)}px`;
    bw.over.append(span);
    spans.push(span);
    const route = a.route ? el("div", { class: "route" }, `route before: ${hops(a.route.before)}`, el("br"), `route after:  ${hops(a.route.after)}`) : "";
    list.append(el("li", {}, el("span", { class: `alarm ${a.severity}` }, a.kind), ` ${when(a.start)} – ${a.end ? when(a.end) : "active"}: ${a.summary}`, route));
  }
  if (!list.children.length) list.append(el("li", { class: "muted" }, "none in this window"));
  // On the plot too: a bound where there is no capacity to draw, and why
  // there is nothing at all.
  const points = data[1].filter((v) => v !== null).length;
  if (last && (points === 0 || (last.dbc_min_mbps && !last.dbc_mbps))) {
    const note = el("div", { class: "plot-note" }, last.dbc_min_mbps && !last.dbc_mbps ? `DBC > ${num(last.dbc_min_mbps)} Mbit/s` : "no estimate in this window",
      last.error ? el("div", { class: "error" }, last.error) : "");
    bw.over.append(note);
  }
  Object.assign(state, { view: "path", key, points: t.length, spans: spans.length, plotLeft: bw.over.getBoundingClientRect().left, xFrom: from, ready: true });
}

function hops(tr) {
  if (!tr) return "–";
  return tr.hops.map((h) => h.addr || "*").join(" ") + (tr.reached ? "" : " (not reached)");
}

// Link costs on their own scale (docs/mesh.md, Link costs): a perfect hop
// costs 96, a hop at the latency penalty's end 192 (two hops' worth). The
// colour runs from green at 96 to red at 192 and beyond, whatever the
// spread of the costs on the map.
const hopCost = 96;
const costColour = (c) => `hsl(${120 - 120 * Math.min(1, Math.max(0, (c - hopCost) / hopCost))}, 70%, 40%)`;

// A round length in ms for the map's scale bar: at most max ms.
function scaleMs(max) {
  let s = 1e-3;
  for (const step of [1e-3, 2e-3, 5e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]) if (step <= max) s = step;
  return s;
}

// The mesh map: nodes at their coordinates on one path (members that are
// down greyed, where they last were), edges coloured by link cost, a scale
// in ms, and every link in a table below.
async function meshPage() {
  const m = await api("/api/v1/mesh");
  const paths = [...new Set(m.nodes.flatMap((n) => Object.keys(n.coordinates || {})))].sort();
  const path = paths.includes("direct") ? "direct" : paths[0];
  const nodes = m.nodes.filter((n) => n.coordinates && n.coordinates[path]);
  const pos = Object.fromEntries(nodes.map((n) => [n.name, n.coordinates[path].Vec.map((v) => v * 1000)]));
  const xs = Object.values(pos).map((p) => p[0]), ys = Object.values(pos).map((p) => p[1] || 0);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const W = 700, H = 500, pad = 40;
  // One scale for both axes: distances on the map are predicted RTTs.
  // A map less than 1 ms across is drawn at the scale of 1 ms: nodes that
  // close are one place, not a large triangle.
  const k = Math.min((W - 2 * pad) / Math.max(x1 - x0, 1), (H - 2 * pad) / Math.max(y1 - y0, 1));
  const sx = (v) => pad + (v - x0) * k, sy = (v) => pad + (v - y0) * k;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H); svg.id = "mesh-map";
  // A link once, whichever end measured it: the lesser name's reading
  // when both did.
  const byPair = new Map();
  for (const n of nodes) {
    for (const l of n.links?.[path] || []) {
      if (!pos[l.p] || l.p === n.name) continue;
      const key = [n.name, l.p].sort().join(" ");
      if (!byPair.has(key) || n.name < l.p) byPair.set(key, [n.name, l]);
    }
  }
  const links = [...byPair.values()];
  for (const [from, l] of links) {
    const line = document.createElementNS(ns, "line");
    for (const [k, v] of [["x1", sx(pos[from][0])], ["y1", sy(pos[from][1] || 0)], ["x2", sx(pos[l.p][0])], ["y2", sy(pos[l.p][1] || 0)]]) line.setAttribute(k, v);
    line.setAttribute("stroke", costColour(l.c));
    line.setAttribute("data-cost", l.c);
    line.setAttribute("stroke-width", 2);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${from}–${l.p}: cost ${l.c}, RTT ${l.r} ms`;
    line.append(title);
    svg.append(line);
  }
  const edges = links.length;
  // Relay shortcuts: a–relay–b, dashed, where relaying beats the direct path.
  let relays = 0;
  for (const r of (m.relays || []).filter((r) => r.path === path && pos[r.a] && pos[r.b] && pos[r.relay])) {
    const pl = document.createElementNS(ns, "polyline");
    pl.setAttribute("points", [r.a, r.relay, r.b].map((k) => `${sx(pos[k][0])},${sy(pos[k][1] || 0)}`).join(" "));
    pl.setAttribute("fill", "none"); pl.setAttribute("stroke", "#8e44ad"); pl.setAttribute("stroke-width", 3);
    pl.setAttribute("stroke-dasharray", "6 4"); pl.setAttribute("class", "relay");
    const title = document.createElementNS(ns, "title");
    title.textContent = `${r.a}–${r.b} through ${r.relay}: ${r.gain_ms.toFixed(1)} ms faster than direct (${r.direct_ms.toFixed(1)} ms)`;
    pl.append(title);
    svg.append(pl);
    relays++;
  }
  // This node's routes (its route table): the one to a node clicked, or
  // chosen in the table below, drawn over the map.
  const routes = (await api("/api/v1/mesh/routes")).filter((r) => r.path === path);
  const drawRoute = (dst) => {
    svg.querySelector("#mesh-route")?.remove();
    const r = routes.find((r) => r.destination === dst);
    state.route = !r ? "" : r.reachable ? r.hops.join(">") : "unreachable";
    routeNote.textContent = !r ? `no route to ${dst}` : r.reachable ? `route to ${dst}: ${r.hops.join(" → ")}, ${num(r.value, 1)}${r.provisional ? `; provisional until the direct link to ${dst} is measured` : ""}` : `${dst} is unreachable`;
    if (!r || !r.reachable || !r.hops.every((h) => pos[h])) return;
    const pl = document.createElementNS(ns, "polyline");
    pl.id = "mesh-route";
    pl.setAttribute("points", r.hops.map((k) => `${sx(pos[k][0])},${sy(pos[k][1] || 0)}`).join(" "));
    pl.setAttribute("fill", "none"); pl.setAttribute("stroke", "#e67e22"); pl.setAttribute("stroke-width", 6); pl.setAttribute("stroke-opacity", 0.7);
    svg.insertBefore(pl, svg.querySelector("circle"));
  };
  const routeNote = el("p", { id: "route-note", class: "muted" }, routes.length ? "Click a node, or a route below, to draw this node's route to it." : "");
  let down = 0;
  for (const n of nodes) {
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", sx(pos[n.name][0])); c.setAttribute("cy", sy(pos[n.name][1] || 0)); c.setAttribute("r", 6);
    c.setAttribute("fill", !n.alive ? "#bbb" : n.name === m.node ? "#1f3b57" : "#2471a3");
    c.setAttribute("data-name", n.name);
    if (n.name !== m.node) {
      c.style.cursor = "pointer";
      c.addEventListener("click", () => drawRoute(n.name));
    }
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", sx(pos[n.name][0]) + 8); t.setAttribute("y", sy(pos[n.name][1] || 0) - 8);
    t.textContent = n.alive ? n.name : `${n.name} (down since ${when(n.since)})`;
    if (!n.alive) {
      t.setAttribute("class", "down");
      c.setAttribute("class", "down");
      down++;
    }
    svg.append(c, t);
  }
  // The scale: a round number of ms, at most a fifth of the map's width.
  const ms = scaleMs((W - 2 * pad) / 5 / k);
  const bar = document.createElementNS(ns, "g");
  bar.id = "map-scale";
  const y = H - 12, len = ms * k;
  const line = document.createElementNS(ns, "line");
  for (const [a, v] of [["x1", pad], ["y1", y], ["x2", pad + len], ["y2", y]]) line.setAttribute(a, v);
  line.setAttribute("stroke", "#222"); line.setAttribute("stroke-width", 2);
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", pad + len + 6); label.setAttribute("y", y + 4);
  label.textContent = `${ms} ms`;
  bar.append(line, label);
  svg.append(bar);
  const table = el("table", { id: "mesh-links" }, el("tr", {}, el("th", { class: "name" }, "link"), el("th", {}, "cost"), el("th", {}, "RTT ms")),
    ...links.sort((a, b) => b[1].c - a[1].c).map(([from, l]) => el("tr", {},
      el("td", { class: "name" }, [from, l.p].sort().join(" – ")), el("td", { style: `color: ${costColour(l.c)}` }, num(l.c, 1)), el("td", {}, num(l.r, 2)))));
  const routeTable = el("table", { id: "mesh-routes" }, el("tr", {}, el("th", { class: "name" }, "to"), el("th", { class: "name" }, "route"), el("th", {}, "cost"), el("th", {}, "since (UTC)")),
    ...routes.map((r) => el("tr", { class: "route-row", onclick: () => drawRoute(r.destination) },
      el("td", { class: "name" }, r.destination), el("td", { class: "name" }, r.reachable ? r.hops.join(" → ") + (r.provisional ? " (provisional)" : "") : "unreachable"),
      el("td", {}, r.reachable ? num(r.value, 1) : "–"), el("td", {}, when(r.since)))));
  main.replaceChildren(el("h2", {}, `Mesh (${path}): coordinates in ms; edges coloured by link cost, from green at ${hopCost} (a perfect hop) to red at ${2 * hopCost} (two hops' worth) and beyond; relay shortcuts dashed; members that are down in grey`),
    svg, routeNote, el("h3", {}, `Routes from ${m.node}`), routeTable, el("h3", {}, "Links, costliest first"), table);
  Object.assign(state, { view: "mesh", nodes: nodes.length, edges, relays, down, scaleMs: ms, routes: routes.length, provisional: routes.filter((r) => r.reachable && r.provisional).length, route: "", ready: true });
}

function go(key, since, dir) {
  location.hash = `#/path/${encodeURIComponent(key)}?since=${since}&dir=${dir}`;
}

async function route() {
  state.ready = false;
  const h = location.hash || "#/";
  try {
    if (h.startsWith("#/path/")) {
      const [k, query] = h.slice(7).split("?");
      const p = new URLSearchParams(query || "");
      await pathPage(decodeURIComponent(k), p.get("since") || "24h", p.get("dir") || "forward");
    } else if (h === "#/mesh") {
      await meshPage();
    } else {
      await overview();
    }
  } catch (err) {
    fail(err);
  }
}

window.addEventListener("hashchange", route);
document.getElementById("mesh-link").hidden = document.body.dataset.mesh !== "1";
route();
