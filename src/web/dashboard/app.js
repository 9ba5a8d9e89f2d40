// Starling dashboard: plain JavaScript over the public REST and WebSocket
// API only (everything shown here can be had by a program). No build step,
// no external assets.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
};
const SVG = "http://www.w3.org/2000/svg";
const svgEl = (tag, attrs = {}) => {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};
const fmt = (x, d = 2) => (x == null || Number.isNaN(x) ? "—" : Number(x).toFixed(d));
const signed = (x, d = 2) => (x == null ? "—" : (x >= 0 ? "+" : "") + Number(x).toFixed(d));
// Sentiment as text with a symbol and a class: never colour alone.
const tone = (x) => (x == null ? "neu" : x > 0.05 ? "pos" : x < -0.05 ? "neg" : "neu");
const toneText = (x) => (x == null ? "— " : (x > 0.05 ? "▲ " : x < -0.05 ? "▼ " : "● ") + signed(x));

// ---- API key and REST -----------------------------------------------------
let apiKey = localStorage.getItem("starling-key") || "";
function askKey() {
  const d = $("#key-dialog");
  $("#key-input").value = apiKey;
  d.showModal();
  d.addEventListener("close", () => {
    if (d.returnValue === "ok") {
      apiKey = $("#key-input").value.trim();
      localStorage.setItem("starling-key", apiKey);
      reconnect();
      refreshAll();
    }
  }, { once: true });
}
$("#key-button").addEventListener("click", askKey);

async function api(path, method = "GET") {
  const headers = apiKey ? { Authorization: "Bearer " + apiKey } : {};
  const r = await fetch(path, { method, headers });
  if (r.status === 401 && !$("#key-dialog").open) askKey();
  const body = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const err = new Error(body?.error?.message || r.statusText);
    err.status = r.status;
    throw err;
  }
  return body;
}

// ---- Tabs -----------------------------------------------------------------
for (const b of document.querySelectorAll("nav button")) {
  b.addEventListener("click", () => {
    document.querySelectorAll("nav button").forEach((x) => x.classList.toggle("active", x === b));
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.id === b.dataset.tab));
    if (b.dataset.tab === "entities") loadEntities();
    if (b.dataset.tab === "alerts") loadAlerts();
  });
}

// ---- War room ---------------------------------------------------------------
function gauge(view) {
  const si = view.sentiment_index;
  const box = $("#gauge");
  box.replaceChildren();
  const svg = svgEl("svg", { viewBox: "0 0 200 120", role: "img", "aria-label": "sentiment index " + fmt(si) });
  const arc = (a0, a1, cls) => {
    const p = (a) => [100 + 80 * Math.cos(Math.PI * (1 - a)), 100 - 80 * Math.sin(Math.PI * (1 - a))];
    const [x0, y0] = p(a0), [x1, y1] = p(a1);
    svg.append(svgEl("path", { d: `M${x0},${y0} A80,80 0 0 1 ${x1},${y1}`, fill: "none", "stroke-width": 16, class: cls }));
  };
  arc(0, 0.475, "arc-neg");
  arc(0.475, 0.525, "arc-neu");
  arc(0.525, 1, "arc-pos");
  const a = si == null ? 0.5 : (si + 1) / 2;
  const nx = 100 + 70 * Math.cos(Math.PI * (1 - a)), ny = 100 - 70 * Math.sin(Math.PI * (1 - a));
  svg.append(svgEl("line", { x1: 100, y1: 100, x2: nx, y2: ny, stroke: "#111827", "stroke-width": 3 }));
  box.append(svg);
  box.append(el("p", { class: tone(si), id: "gauge-value" }, "sentiment index " + toneText(si)));
  box.append(el("p", { class: "muted" },
    `${view.volume} posts · ${view.positive} positive · ${view.negative} negative · ${view.neutral} neutral`));
}

function bars(box, rows, value, label) {
  box.replaceChildren();
  if (!rows.length) { box.append(el("p", { class: "muted" }, "nothing yet")); return; }
  const max = Math.max(...rows.map(value), 1e-9);
  for (const r of rows) {
    const v = value(r);
    const si = r.sentiment_index;
    const bar = el("div", { class: "bar " + tone(si), style: `width:${Math.max(2, (100 * v) / max)}%` });
    box.append(el("div", { class: "row", title: `sentiment ${toneText(si)}` },
      el("span", { class: "name" }, r.id), el("div", {}, bar), el("span", { class: "val " + tone(si) }, label(r))));
  }
}

async function loadWarRoom() {
  try {
    gauge(await api("/api/metrics/overall"));
    for (const [dim, box] of [["geo", "#geo"], ["products", "#products"], ["channels", "#channels"]]) {
      const r = await api(`/api/metrics/${dim}?period=1h&limit=8`);
      bars($(box), r.entities, (e) => e.share_of_voice,
        (e) => `${(100 * e.share_of_voice).toFixed(0)}% ${e.sentiment_index == null ? "" : e.sentiment_index > 0.05 ? "▲" : e.sentiment_index < -0.05 ? "▼" : "●"}`);
    }
  } catch (e) { console.warn("war room", e); }
}

// Emotions of the posts seen live (the messages channel carries each post's scores).
const emotions = new Map();
function countEmotion(post) {
  const label = post.scores?.emotion?.label;
  if (!label) return;
  emotions.set(label, (emotions.get(label) || 0) + 1);
}
function drawEmotions() {
  const rows = [...emotions.entries()].map(([id, n]) => ({ id, n })).sort((a, b) => b.n - a.n);
  const total = rows.reduce((s, r) => s + r.n, 0);
  bars($("#emotions"), rows, (r) => r.n, (r) => `${((100 * r.n) / total).toFixed(0)}%`);
}

// The trend: the macro entity's 1-second windows as they arrive.
const trend = [];
function pushTrend(w) {
  if (trend.length && trend[trend.length - 1].t === w.start_ms) trend.pop();
  trend.push({ t: w.start_ms, v: w.metrics.volume, s: w.metrics.sentiment_index });
  while (trend.length > 120) trend.shift();
}
function drawTrend() {
  const box = $("#trend");
  box.replaceChildren();
  const svg = svgEl("svg", { viewBox: "0 0 400 140", role: "img", "aria-label": "posts per second and sentiment" });
  if (trend.length > 1) {
    const t0 = trend[0].t, t1 = trend[trend.length - 1].t || t0 + 1;
    const maxV = Math.max(...trend.map((p) => p.v), 1);
    const x = (t) => 5 + (390 * (t - t0)) / Math.max(1, t1 - t0);
    const vol = trend.map((p) => `${x(p.t)},${135 - (125 * p.v) / maxV}`).join(" ");
    svg.append(svgEl("polyline", { points: vol, fill: "none", stroke: "#6b7280", "stroke-width": 1.5 }));
    const sent = trend.filter((p) => p.s != null).map((p) => `${x(p.t)},${70 - 60 * p.s}`).join(" ");
    svg.append(svgEl("polyline", { points: sent, fill: "none", stroke: "#1f5fbf", "stroke-width": 2, "stroke-dasharray": "5 2" }));
    svg.append(svgEl("line", { x1: 5, x2: 395, y1: 70, y2: 70, stroke: "#d1d5db" }));
  }
  box.append(svg);
  const last = trend[trend.length - 1];
  box.append(el("p", { class: "muted", id: "trend-last" },
    last ? `grey: posts/s (now ${last.v}) · blue dashed: sentiment ${toneText(last.s)}` : "waiting for the live feed…"));
}

// ---- Live feed ----------------------------------------------------------------
let paused = false;
$("#feed-pause").addEventListener("click", (e) => {
  paused = !paused;
  e.target.setAttribute("aria-pressed", String(paused));
  e.target.textContent = paused ? "Resume" : "Pause";
});
function feedFilters() {
  const f = new FormData($("#feed-filters"));
  const sub = { type: "subscribe", channel: "messages" };
  for (const k of ["entity", "sentiment", "platform"]) if (f.get(k)) sub[k] = f.get(k);
  return sub;
}
$("#feed-filters").addEventListener("submit", (e) => {
  e.preventDefault();
  if (feedSub != null) send({ type: "unsubscribe", subscription: feedSub });
  feedSub = null;
  pending.push("feed");
  send(feedFilters());
  $("#feed-list").replaceChildren();
});
function postItem(p) {
  const s = p.scores?.sentiment;
  return el("li", { "data-id": p.post.id, onclick: () => showPost(p) },
    el("div", {}, p.post.text),
    el("div", { class: "meta" },
      el("span", { class: tone(s?.score) }, `${s?.label ?? "?"} ${toneText(s?.score)}`),
      ` · @${p.post.author.handle} · ${p.post.platform} · ${new Date(p.post.created_at).toLocaleTimeString()}`));
}
function showPost(p) {
  $("#feed-detail").replaceChildren(
    el("h3", {}, "@" + p.post.author.handle),
    el("p", {}, p.post.text),
    el("h4", {}, "scores"), el("pre", {}, JSON.stringify(p.scores, null, 2)),
    el("h4", {}, "entities"), el("pre", {}, (p.entities || []).map((e) => `${e.kind}:${e.id}`).join("\n")));
}

// ---- Alerts -------------------------------------------------------------------
async function loadAlerts() {
  try {
    const r = await api("/api/alerts?limit=50");
    const list = $("#alert-list");
    list.replaceChildren();
    const onlyOpen = $("#alerts-open").checked;
    for (const a of r.alerts) if (!onlyOpen || a.state !== "resolved") list.append(alertItem(a));
    if (!list.children.length) list.append(el("li", { class: "muted" }, "no alerts"));
  } catch (e) { console.warn("alerts", e); }
}
$("#alerts-open").addEventListener("change", loadAlerts);
function alertItem(a) {
  const act = (what) => async () => {
    try { await api(`/api/alerts/${a.id}/${what}`, "POST"); } catch (e) { alert(e.message); }
    loadAlerts();
  };
  const ev = a.evidence || {};
  return el("li", { "data-id": a.id },
    el("span", { class: "sev", title: "severity" }, String(a.severity)),
    el("strong", {}, a.title),
    el("span", { class: "state" }, a.state),
    el("div", { class: "meta" }, `${a.kind} · ${a.entity.kind}:${a.entity.id} · ${ev.metric ?? ""} ${fmt(ev.value)} (threshold ${fmt(ev.threshold)}) · ${new Date(a.opened_at_ms).toLocaleTimeString()}`),
    a.state === "open" ? el("button", { onclick: act("ack") }, "Acknowledge") : null,
    a.state !== "resolved" ? el("button", { onclick: act("resolve") }, "Resolve") : null);
}

// ---- Entities -------------------------------------------------------------------
function sparkline(points) {
  const svg = svgEl("svg", { viewBox: "0 0 100 24", width: 100, height: 24, "aria-hidden": "true" });
  if (points.length > 1) {
    const max = Math.max(...points, 1);
    svg.append(svgEl("polyline", {
      points: points.map((v, i) => `${(100 * i) / (points.length - 1)},${22 - (20 * v) / max}`).join(" "),
      fill: "none", stroke: "#6b7280", "stroke-width": 1.5,
    }));
  }
  return svg;
}
async function loadEntities() {
  const f = new FormData($("#entity-controls"));
  const kind = f.get("kind");
  $("#entity-page").hidden = true;
  try {
    const r = await api(`/api/entities/${kind}?sort=${f.get("sort")}&period=${f.get("period")}&limit=20`);
    const body = $("#entity-table tbody");
    body.replaceChildren();
    const now = Date.now();
    for (const e of r.entities) {
      const spark = el("td", {}), summary = el("td", { class: "summary muted" }, "—");
      body.append(el("tr", { onclick: () => openEntity(kind, e.id) },
        el("td", {}, e.id), el("td", { class: "num" }, String(e.volume)),
        el("td", { class: "num " + tone(e.sentiment_index) }, toneText(e.sentiment_index)),
        el("td", { class: "num" }, fmt(e.popularity)), el("td", { class: "num" }, (100 * e.share_of_voice).toFixed(1) + "%"),
        el("td", { class: "num" }, e.change == null ? "—" : signed(100 * e.change, 0) + "%"), spark, summary));
      const id = encodeURIComponent(e.id);
      api(`/api/entities/${kind}/${id}/series?resolution=1m&from=${now - 3600e3}&to=${now}`)
        .then((s) => spark.append(sparkline(s.points.map((w) => w.volume)))).catch(() => {});
      api(`/api/entities/${kind}/${id}/summary`).then((s) => { summary.textContent = s.text; summary.classList.remove("muted"); }).catch(() => {});
    }
    if (!r.entities.length) body.append(el("tr", {}, el("td", { colspan: 8, class: "muted" }, "no entities in this period")));
  } catch (e) { console.warn("entities", e); }
}
$("#entity-controls").addEventListener("submit", (e) => { e.preventDefault(); loadEntities(); });
// Clicking a column heading sorts by it (the server ranks: the same as the sort menu).
for (const th of document.querySelectorAll("#entity-table th[data-sort]")) {
  th.addEventListener("click", () => {
    $("#entity-controls").elements.sort.value = th.dataset.sort;
    loadEntities();
  });
}

async function openEntity(kind, id) {
  const page = $("#entity-page");
  page.hidden = false;
  const enc = encodeURIComponent(id);
  page.replaceChildren(el("h2", {}, `${kind}:${id}`), el("p", { class: "muted" }, "loading…"));
  const [view, summary, top, authors] = await Promise.all([
    api(`/api/entities/${kind}/${enc}`).catch(() => null),
    api(`/api/entities/${kind}/${enc}/summary`).catch(() => null),
    api(`/api/entities/${kind}/${enc}/posts/top?limit=5`).catch(() => ({ posts: [] })),
    api(`/api/entities/${kind}/${enc}/authors?limit=5`).catch(() => ({ authors: [] })),
  ]);
  const chart = el("div", { id: "entity-series" });
  const res = el("select", { "aria-label": "resolution", onchange: () => drawSeries(kind, enc, res.value, chart) },
    el("option", { value: "1s" }, "1s"), el("option", { value: "1m", selected: "" }, "1m"), el("option", { value: "1h" }, "1h"));
  page.replaceChildren(
    el("h2", {}, `${kind}:${id}`),
    el("p", {}, view ? `${view.volume} posts all time · sentiment index ${toneText(view.sentiment_index)}` : "never seen"),
    el("h3", {}, "Series "), res, chart,
    el("h3", {}, "Summary"),
    el("p", { id: "entity-summary" }, summary ? summary.text : "no summary yet"),
    summary ? el("p", { class: "muted" }, `${summary.method}${summary.model ? " (" + summary.model + ")" : ""}${summary.fallback_reason ? " · " + summary.fallback_reason : ""}`) : null,
    el("h3", {}, "Top posts"), el("ol", { class: "posts" }, ...(top.posts || []).map(postItem)),
    el("h3", {}, "Authors"),
    el("ol", {}, ...(authors.authors || []).map((a) => el("li", {}, `@${a.handle}: ${a.posts} posts, ${a.engagement} engagement, sentiment ${toneText(a.mean_sentiment)}`))));
  drawSeries(kind, enc, "1m", chart);
}
async function drawSeries(kind, enc, resolution, box) {
  const span = { "1s": 300e3, "1m": 3600e3 * 3, "1h": 86400e3 * 7 }[resolution];
  const now = Date.now();
  try {
    const s = await api(`/api/entities/${kind}/${enc}/series?resolution=${resolution}&from=${now - span}&to=${now}`);
    box.replaceChildren(sparkline(s.points.map((w) => w.volume)), el("p", { class: "muted" }, `${s.points.length} windows, volume`));
    box.firstChild.setAttribute("width", "100%");
    box.firstChild.setAttribute("height", "80");
  } catch (e) { box.textContent = e.message; }
}

// ---- Search -----------------------------------------------------------------------
$("#search-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = new FormData(e.target).get("q");
  try {
    const r = await api(`/api/search?q=${encodeURIComponent(q)}&limit=30`);
    $("#search-total").textContent = `${r.total} posts`;
    $("#search-list").replaceChildren(...r.posts.map(postItem));
  } catch (err) { $("#search-total").textContent = err.message; }
});

// ---- WebSocket --------------------------------------------------------------------
let ws = null, backoff = 500, feedSub = null;
const pending = [];
function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }
function setConn(state) {
  const c = $("#conn");
  c.textContent = state;
  c.className = "conn " + (state === "live" ? "live" : "down");
}
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const url = `${proto}://${location.host}/ws${apiKey ? "?token=" + encodeURIComponent(apiKey) : ""}`;
  ws = new WebSocket(url);
  ws.onopen = () => {
    setConn("live");
    backoff = 500;
    feedSub = null;
    pending.length = 0;
    pending.push("feed", "alerts");
    send(feedFilters());
    send({ type: "subscribe", channel: "alerts" });
  };
  ws.onmessage = (m) => {
    const f = JSON.parse(m.data);
    if (f.type === "subscribed") {
      const what = pending.shift();
      if (what === "feed") feedSub = f.subscription;
    } else if (f.type === "metrics:update") {
      for (const w of f.windows) if (w.kind === "macro" && w.resolution === "1s") pushTrend(w);
      drawTrend();
    } else if (f.type === "message:new") {
      countEmotion(f);
      if (!paused && f.subscription === feedSub) {
        const list = $("#feed-list");
        list.prepend(postItem(f));
        while (list.children.length > 100) list.lastChild.remove();
      }
    } else if (f.type.startsWith("alert:")) {
      if ($("#alerts").classList.contains("active")) loadAlerts();
      $("nav button[data-tab=alerts]").textContent = "Alerts •";
    }
  };
  ws.onclose = () => {
    setConn("reconnecting…");
    setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
}
function reconnect() { if (ws) ws.close(); }

function refreshAll() { loadWarRoom(); drawEmotions(); }
connect();
refreshAll();
setInterval(refreshAll, 5000);
drawTrend();
