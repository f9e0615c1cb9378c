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
</style>
</head>
<body>
<h1>boxgate console</h1>
<div class="row">
 <label>Box <input id="box" value="box-1" size="24"></label>
 <label>Token <input id="token" type="password" size="24" placeholder="(API open)"></label>
 <button id="load">Load</button>
</div>
<h2>Presence</h2><pre id="presence">-</pre>
<h2>State</h2><pre id="state">-</pre>
<h2>Command</h2>
<div class="row">
 <label>Method <input id="method" value="ping"></label>
 <label>Timeout ms <input id="timeout" value="5000" size="8"></label>
 <button id="send">Send</button>
</div>
<label>Params (JSON) <textarea id="params">{}</textarea></label>
<pre id="reply">-</pre>
<h2>Live events <button id="watch">Watch</button> <span id="watching"></span></h2>
<ul id="events"></ul>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const boxId = () => $("box").value.trim();
const path = (tail) => "v1/devices/" + encodeURIComponent(boxId()) + tail;
function headers(extra) {
  const h = Object.assign({}, extra || {});
  const t = $("token").value.trim();
  if (t) h["Authorization"] = "Bearer " + t;
  return h;
}
function show(el, text, cls) { el.textContent = text; el.className = cls || ""; }
function pretty(text) { try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; } }
async function load() {
  try {
    const p = await fetch(path(""), { headers: headers() });
    const body = await p.text();
    if (p.status === 404) show($("presence"), "unknown");
    else show($("presence"), p.status + "\n" + pretty(body), p.ok ? "ok" : "err");
  } catch (e) { show($("presence"), String(e), "err"); }
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
  const timeout = encodeURIComponent($("timeout").value.trim() || "5000");
  try {
    const r = await fetch(path("/commands?timeout_ms=" + timeout), {
      method: "POST", headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ method: $("method").value, params: params }) });
    const body = await r.text();
    show($("reply"), r.status + " " + r.statusText + "\n" + pretty(body), r.ok ? "ok" : "err");
  } catch (e) { show($("reply"), String(e), "err"); }
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
