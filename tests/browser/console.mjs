// Drives the gateway's console (GET /console) in headless Chromium over the
// Chrome DevTools protocol (Node's built-in WebSocket: node
// --experimental-websocket on Node 20), against a real stack with devsim:
// load a box (presence, state), send a command and see its reply, watch the
// live events and see one arrive.
//   node --experimental-websocket tests/browser/console.mjs <gateway base URL> <chromium> <profile dir>
// Exit 0 when every step passed, 1 otherwise (each step is printed).
// The Chromium child is killed by its pid on every exit path.
import { spawn } from "node:child_process";

const [base, chromiumPath, profile] = process.argv.slice(2);
const deadline = Date.now() + 60000;
const browser = spawn(chromiumPath, [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", `--user-data-dir=${profile}`, "about:blank",
], { stdio: ["ignore", "ignore", "pipe"] });
const stop = (code) => { try { process.kill(browser.pid, "SIGKILL"); } catch (e) {} process.exit(code); };
setTimeout(() => { console.log("FAIL: timed out"); stop(1); }, 60000).unref();

const wsUrl = await new Promise((resolve, reject) => {
  let err = "";
  browser.stderr.on("data", (d) => {
    err += d;
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
    if (m) resolve(m[1]);
  });
  browser.on("exit", (c) => reject(new Error("chromium exited " + c + ": " + err)));
}).catch((e) => { console.log("FAIL: " + e.message); stop(1); });

const ws = new WebSocket(wsUrl);
await new Promise((r) => ws.addEventListener("open", r));
let nextId = 1;
const waiting = new Map();
ws.addEventListener("message", (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && waiting.has(msg.id)) { waiting.get(msg.id)(msg); waiting.delete(msg.id); }
});
const send = (method, params = {}, sessionId) => new Promise((resolve) => {
  const id = nextId++;
  waiting.set(id, resolve);
  ws.send(JSON.stringify({ id, method, params, sessionId }));
});

const { result: { targetId } } = await send("Target.createTarget", { url: base + "/console" });
const { result: { sessionId } } = await send("Target.attachToTarget", { targetId, flatten: true });
const evaluate = async (expression) => {
  const r = await send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true }, sessionId);
  return r.result && r.result.result ? r.result.result.value : undefined;
};
const until = async (what, expression) => {
  while (Date.now() < deadline) {
    const v = await evaluate(expression);
    if (v) { console.log("ok: " + what + (typeof v === "string" ? " -- " + v.slice(0, 200) : "")); return v; }
    await new Promise((r) => setTimeout(r, 100));
  }
  console.log("FAIL: " + what);
  console.log("page: " + await evaluate("document.body ? document.body.innerText : '(none)'"));
  stop(1);
};

await until("page loaded", "document.readyState === 'complete' && !!document.getElementById('send')");
await evaluate("document.getElementById('box').value = 'box-1'; document.getElementById('load').click(); true");
await until("presence shown", "(t => t !== '-' && t)(document.getElementById('presence').textContent)");
await until("state shown", "(t => t !== '-' && t.includes('seq') && t)(document.getElementById('state').textContent)");
await evaluate("document.getElementById('method').value = 'ping'; document.getElementById('send').click(); true");
await until("command reply shown", "(t => t.startsWith('200') && t.includes('result') && t)(document.getElementById('reply').textContent)");
await evaluate("document.getElementById('watch').click(); true");
await until("live event shown", "(l => l.length > 0 && l[0].textContent.includes('telemetry') && l[0].textContent)(document.querySelectorAll('#events li'))");
console.log("PASS");
stop(0);
