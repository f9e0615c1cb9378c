// Drives the gateway's console (GET /console) in headless Chromium over the
// Chrome DevTools protocol (Node's built-in WebSocket: node
// --experimental-websocket on Node 20), against a real stack. Two scenarios:
//   live (default), with devsim: load a box (presence, state), send a command
//     and see its reply, watch the live events and see one arrive.
//   queue <box> <online file>, the box offline: queue two commands through
//     the form with a ttl, see both in the Queue panel in send order, cancel
//     the first with its button and see it gone; print "ok: one cancelled",
//     then wait for <online file> to exist (the test creates it once the box
//     is online with a device that answers) and see the queue empty on the
//     page's own timer, without another click.
//   node --experimental-websocket tests/browser/console.mjs <gateway base URL> <chromium> <profile dir> [scenario...]
// Exit 0 when every step passed, 1 otherwise (each step is printed).
// The Chromium child is killed by its pid on every exit path.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

const [base, chromiumPath, profile, scenario = "live", ...scenarioArgs] = process.argv.slice(2);
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

const fail = async (what) => {
  console.log("FAIL: " + what);
  console.log("page: " + await evaluate("document.body ? document.body.innerText : '(none)'"));
  stop(1);
};

await until("page loaded", "document.readyState === 'complete' && !!document.getElementById('send')");

// The Queue panel's rows as "<request id> <state>" strings, in page order.
const queueRows = "Array.from(document.querySelectorAll('#queue tbody tr'), (r) => r.cells[0].textContent + ' ' + r.cells[1].textContent)";

// Sends one command with a ttl through the form; returns its request id from the 202 shown.
const sendQueued = async (what) => {
  await evaluate("document.getElementById('method').value = 'noop'; document.getElementById('ttl').value = '60000'; " +
                 "document.getElementById('send').click(); true");
  const shown = await until(what + " answered 202 queued",
    "(t => t.startsWith('202') && t.split('\\n')[0].includes('queued') && t)(document.getElementById('reply').textContent)");
  const id = JSON.parse(shown.slice(shown.indexOf("\n") + 1)).request_id;
  if (!id) await fail(what + ": no request_id in the reply shown");
  // The next send must not see this reply as its own.
  await evaluate("document.getElementById('reply').textContent = '-'; true");
  return id;
};

if (scenario === "queue") {
  const [box, onlineFile] = scenarioArgs;
  await evaluate(`document.getElementById('box').value = ${JSON.stringify(box)}; document.getElementById('load').click(); true`);
  await until("offline shown with its queued count", "(t => t.includes('(offline, 0 queued)') && t)(document.getElementById('presence-summary').textContent)");
  await until("empty queue shown", "document.getElementById('queue-note').textContent === 'empty'");
  const first = await sendQueued("first command");
  const second = await sendQueued("second command");
  console.log("ids: " + first + " " + second);
  const both = JSON.stringify([first + " queued", second + " queued"]);
  await until("both listed in send order", `JSON.stringify(${queueRows}) === ${JSON.stringify(both)}`);
  await until("queued count shown with the presence", "(t => t.includes('2 queued') && t)(document.getElementById('presence-summary').textContent)");
  await evaluate("document.querySelector('#queue tbody tr button.cancel').click(); true");
  await until("cancel confirmed", `(t => t.startsWith('cancelled ${first}') && t)(document.getElementById('queue-msg').textContent)`);
  await until("one cancelled", `JSON.stringify(${queueRows}) === ${JSON.stringify(JSON.stringify([second + " queued"]))}`);
  // The test brings the box online with a device that answers, then creates the file.
  while (!existsSync(onlineFile)) {
    if (Date.now() > deadline) await fail("the box was never brought online");
    await new Promise((r) => setTimeout(r, 100));
  }
  await until("queue empty after the box came online (timer refresh)",
    `${queueRows}.length === 0 && document.getElementById('queue-note').textContent === 'empty'`);
  await until("online shown with 0 queued", "(t => t.includes('(online, 0 queued)') && t)(document.getElementById('presence-summary').textContent)");
  console.log("PASS");
  stop(0);
}
if (scenario !== "live") await fail("unknown scenario " + scenario);

await evaluate("document.getElementById('box').value = 'box-1'; document.getElementById('load').click(); true");
await until("presence shown", "(t => t !== '-' && t)(document.getElementById('presence').textContent)");
await until("state shown", "(t => t !== '-' && t.includes('seq') && t)(document.getElementById('state').textContent)");
await evaluate("document.getElementById('method').value = 'ping'; document.getElementById('send').click(); true");
await until("command reply shown", "(t => t.startsWith('200') && t.includes('result') && t)(document.getElementById('reply').textContent)");
await evaluate("document.getElementById('watch').click(); true");
await until("live event shown", "(l => l.length > 0 && l[0].textContent.includes('telemetry') && l[0].textContent)(document.querySelectorAll('#events li'))");
console.log("PASS");
stop(0);
