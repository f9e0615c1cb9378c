#include "api/console.hpp"

namespace boxgate::gateway {

namespace {
// Everything the browser needs is in this string; textContent (never
// innerHTML) shows device data, so a payload cannot inject markup.
constexpr const char* kPage = R"page(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>boxgate console</title>
<style>
 body { font: 14px system-ui, sans-serif; margin: 1.5em; max-width: 70em; color: #222; }
 h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.4em; }
 input, textarea, button { font: inherit; } textarea { width: 100%; height: 5em; }
 pre { background: #f4f4f4; padding: .6em; white-space: pre-wrap; word-break: break-all; max-height: 20em; overflow: auto; }
 .row { display: flex; gap: .6em; align-items: center; flex-wrap: wrap; }
 .err { color: #a00; } .ok { color: #060; }
 #events li { font-family: monospace; margin: .2em 0; }
 table { border-collapse: collapse; } th, td { text-align: left; padding: .2em .8em .2em 0; }
 #queue td { font-family: monospace; }
 .note { font-weight: normal; color: #555; }
</style>
</head>
<body>
<h1>boxgate console</h1>
<div class="row">
 <label>Box <input id="box" value="box-1" size="24"></label>
 <label>Token <input id="token" type="password" size="24" placeholder="(API open)"></label>
 <button id="load">Load</button>
</div>
<h2>Presence <span id="presence-summary" class="note"></span></h2><pre id="presence">-</pre>
<h2>State</h2><pre id="state">-</pre>
<h2>Command</h2>
<div class="row">
 <label>Method <input id="method" value="ping"></label>
 <label>Timeout ms <input id="timeout" value="5000" size="8"></label>
 <label>ttl (ms) <input id="ttl" size="10" placeholder="(send now)"></label>
 <button id="send">Send</button>
</div>
<label>Params (JSON) <textarea id="params">{}</textarea></label>
<pre id="reply">-</pre>
<h2>Queue <button id="refresh-queue">Refresh</button> <span id="queue-note" class="note"></span></h2>
<table id="queue"><thead><tr><th>request id</th><th>state</th><th>age</th><th>ttl left</th><th></th></tr></thead>
<tbody></tbody></table>
<pre id="queue-msg" hidden></pre>
<h2>Live events <button id="watch">Watch</button> <span id="watching"></span></h2>
<ul id="events"></ul>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const boxId = () => $("box").value.trim();
const boxPath = (box, tail) => "v1/devices/" + encodeURIComponent(box) + tail;
const path = (tail) => boxPath(boxId(), tail);
function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = $("token").value.trim();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}
function show(el, text, cls) { el.textContent = text; el.className = cls || ""; }
function pretty(text) { try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; } }
function parse(text) { try { return JSON.parse(text); } catch (e) { return null; } }
// "42 s", "7 min", "3 h 5 min", "2 d 4 h": ages and time left, by this browser's clock.
function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 120) return m + " min";
  const h = Math.floor(m / 60);
  return h < 48 ? h + " h " + (m % 60) + " min" : Math.floor(h / 24) + " d " + (h % 24) + " h";
}
// The box the presence and queue panels show: set by Load. Each refresh has a
// number; an answer that is not the latest refresh's is dropped, so a slow
// timer refresh never overwrites what a cancel just showed.
let current = "";
let refreshSeq = 0;
let refreshing = 0;
// A GET of the box's `tail` for refresh `seq`: its response, text and JSON
// (null when not JSON), or null when a later refresh has started meanwhile.
async function read(box, tail, seq) {
  const r = await fetch(boxPath(box, tail), { headers: headers() });
  const body = await r.text();
  return seq === refreshSeq ? { r: r, body: body, doc: parse(body) } : null;
}
async function loadPresence(box, seq) {
  try {
    const got = await read(box, "", seq);
    if (!got) return;
    const p = got.r, body = got.body, doc = p.ok ? got.doc : null;
    $("presence-summary").textContent = doc && typeof doc.online === "boolean"
      ? "(" + (doc.online ? "online" : "offline") + (Number.isInteger(doc.queued) ? ", " + doc.queued + " queued" : "") + ")"
      : "";
    if (p.status === 404) show($("presence"), "unknown");
    else show($("presence"), p.status + "\n" + pretty(body), p.ok ? "ok" : "err");
  } catch (e) { if (seq === refreshSeq) show($("presence"), String(e), "err"); }
}
function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
function renderQueue(box, records, more) {
  const rows = $("queue").tBodies[0];
  rows.textContent = "";
  const now = Date.now();
  for (const r of records) {
    const row = document.createElement("tr");
    const id = String(r.request_id);
    cell(row, id);
    cell(row, String(r.state));
    cell(row, Number.isFinite(r.accepted_ms) ? duration(now - r.accepted_ms) : "-");
    const left = Number.isFinite(r.accepted_ms) && Number.isFinite(r.ttl_ms) ? r.accepted_ms + r.ttl_ms - now : NaN;
    cell(row, r.state !== "queued" || !Number.isFinite(left) ? "-" : left > 0 ? duration(left) : "expired");
    const actions = cell(row, "");
    if (r.state === "queued") {
      const b = document.createElement("button");
      b.textContent = "Cancel";
      b.className = "cancel";
      b.onclick = () => cancel(box, id, b);
      actions.appendChild(b);
    }
    rows.appendChild(row);
  }
  show($("queue-note"), records.length ? records.length + (more ? "+" : "") + " in send order" : "empty", "note");
}
async function loadQueue(box, seq) {
  try {
    const got = await read(box, "/commands?state=queued&limit=100", seq);
    if (!got) return;
    const r = got.r, doc = got.doc;
    if (r.ok && doc && Array.isArray(doc.commands)) return renderQueue(box, doc.commands, !!doc.next_after);
    $("queue").tBodies[0].textContent = "";
    show($("queue-note"), r.status + " " + (doc && doc.message ? doc.message : r.statusText), "err");
  } catch (e) { if (seq === refreshSeq) show($("queue-note"), String(e), "err"); }
}
// Presence (with the queued count) and the queue of the box Load chose.
async function refresh() {
  if (!current) return;
  const seq = ++refreshSeq;
  refreshing++;
  try { await Promise.all([loadPresence(current, seq), loadQueue(current, seq)]); } finally { refreshing--; }
}
async function cancel(box, id, button) {
  button.disabled = true;
  const msg = $("queue-msg");
  msg.hidden = false;
  try {
    const r = await fetch(boxPath(box, "/commands/" + encodeURIComponent(id)), { method: "DELETE", headers: headers() });
    const body = await r.text();
    const doc = parse(body);
    if (r.status === 200) show(msg, "cancelled " + id, "ok");
    else if (r.status === 409) {
      const state = doc && doc.command && doc.command.state ? " (now " + doc.command.state + ")" : "";
      show(msg, "409 " + id + ": " + (doc && doc.message ? doc.message : "already sent") + state, "err");
    } else show(msg, r.status + " " + r.statusText + " " + id + "\n" + pretty(body), "err");
  } catch (e) { show(msg, String(e), "err"); }
  if (box === current) await refresh();
}
async function load() {
  current = boxId();
  $("queue").tBodies[0].textContent = "";
  show($("queue-note"), "", "note");
  $("queue-msg").hidden = true;
  refresh();
  try {
    const s = await fetch(path("/state"), { headers: headers() });
    const body = await s.text();
    if (s.status === 404) show($("state"), "no state reported");
    else show($("state"), pretty(body), s.ok ? "ok" : "err");
  } catch (e) { show($("state"), String(e), "err"); }
}
async function send() {
  let params;
  try { params = JSON.parse($("params").value || "{}"); }
  catch (e) { return show($("reply"), "params are not JSON: " + e.message, "err"); }
  show($("reply"), "waiting...");
  const box = boxId();
  let query = "/commands?timeout_ms=" + encodeURIComponent($("timeout").value.trim() || "5000");
  const extra = { "Content-Type": "application/json" };
  // A ttl queues the command while the box is offline: async only (a 202 with its record).
  const ttl = $("ttl").value.trim();
  if (ttl) {
    query += "&ttl_ms=" + encodeURIComponent(ttl);
    extra["Prefer"] = "respond-async";
  }
  try {
    const r = await fetch(boxPath(box, query), {
      method: "POST", headers: headers(extra),
      body: JSON.stringify({ method: $("method").value, params: params }) });
    const body = await r.text();
    const doc = r.status === 202 ? parse(body) : null;
    const state = doc && typeof doc.state === "string" ? " -- " + doc.state : "";
    show($("reply"), r.status + " " + r.statusText + state + "\n" + pretty(body), r.ok ? "ok" : "err");
  } catch (e) { show($("reply"), String(e), "err"); }
  if (box === current) refresh();
}
let source = null;
function watch() {
  if (source) source.close();
  $("events").textContent = "";
  const box = boxId();
  source = new EventSource(path("/events"));
  $("watching").textContent = "(" + box + ")";
  source.onopen = () => { $("watching").textContent = "(" + box + ", connected)"; };
  source.onerror = () => { $("watching").textContent = "(" + box + ", reconnecting)"; };
  const add = (e) => {
    const li = document.createElement("li");
    li.textContent = e.lastEventId + "  " + e.type + "  " + e.data;
    const list = $("events");
    list.insertBefore(li, list.firstChild);
    while (list.childNodes.length > 200) list.removeChild(list.lastChild);
  };
  source.onmessage = add;
  // Events carry their name as the SSE event type: listen to any of them.
  const seen = new Set(["message"]);
  const listenFor = (name) => { if (!seen.has(name)) { seen.add(name); source.addEventListener(name, add); } };
  ["telemetry", "alarm", "boot", "status"].forEach(listenFor);
  fetch(path("/events?limit=1000"), { headers: headers() }).then((r) => r.ok ? r.json() : null).then((h) => {
    if (h && h.events) h.events.forEach((e) => listenFor(e.name));
  }).catch(() => {});
}
$("load").onclick = load;
$("send").onclick = send;
$("watch").onclick = watch;
$("refresh-queue").onclick = refresh;
// The queue changes without the page: every 5 s while the page is visible
// (and a refresh is not already under way), and at once when it shows again.
setInterval(() => { if (document.visibilityState === "visible" && !refreshing) refresh(); }, 5000);
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") refresh(); });
</script>
</body>
</html>
)page";
}  // namespace

void console_page(http::Exchange ex) {
  // Same-origin only: the page talks to this API and nothing else. Never
  // inside another site's frame: it holds a token field and a Send button
  // (clickjacking). frame-ancestors for today's browsers, X-Frame-Options for
  // those that predate it.
  ex.set_header("Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                "frame-ancestors 'none'");
  ex.set_header("X-Frame-Options", "DENY");
  ex.set_header("Cache-Control", "no-cache");
  ex.reply(200, kPage, "text/html; charset=utf-8");
}

}  // namespace boxgate::gateway
