#!/usr/bin/env python3
"""The compose stack under load, through nginx (run by scripts/compose-test).

Standard library only. Every call carries its own X-Request-Id, so a command
can be followed from the caller through nginx's access log (which gateway got
it, and whether nginx tried a second one) to MQTT (an independent subscriber
on the broker counts each command's publishes: none may be published twice).

Scenarios, in order:
  spread  1000 commands, all 200, each gateway's /metrics shows its share
  drain   SIGTERM to gateway2 under load: every call it had is answered 200,
          it exits 0 once drained, nginx stops sending it new calls
  kill    SIGKILL to gateway3 under load: only its own in-flight calls fail
          (502 from nginx, never sent to another gateway, never published twice)
  bridges a third bridge joins: each reply is forwarded exactly once
Writes one gateway's and one bridge's /metrics to --metrics-out for promtool.
"""

import argparse
import collections
import http.client
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

FAST_BOXES = [f"box-{i}" for i in range(1, 91)]
SLOW_BOXES = [f"box-{i}" for i in range(91, 101)]  # 2 s replies (docker-compose.test.yml)
FAILURES = []
RUN = "%06x" % random.SystemRandom().getrandbits(24)  # request ids unique to this run


def log(msg):
    print(f"    stack_test: {msg}", flush=True)


def check(cond, msg):
    if cond:
        log(f"ok: {msg}")
    else:
        log(f"FAIL: {msg}")
        FAILURES.append(msg)
    return cond


def run(*args, timeout=120, check_rc=True):
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check_rc and out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")
    return out.stdout


class Stack:
    def __init__(self, project, files):
        self.project = project
        self.files = files

    def compose(self, *args, timeout=300):
        return run("docker-compose", "-p", self.project, *self.files, "--profile", "observability", *args,
                   timeout=timeout)

    def ids(self, service):
        return self.compose("ps", "-q", service).split()

    def id(self, service):
        ids = self.ids(service)
        if len(ids) != 1:
            raise RuntimeError(f"{service}: {len(ids)} containers")
        return ids[0]

    @staticmethod
    def ip(cid):
        return run("docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                   cid).strip()

    @staticmethod
    def state(cid):
        fmt = "{{.State.Status}} {{.State.ExitCode}} {{if .State.Health}}{{.State.Health.Status}}{{end}}"
        return run("docker", "inspect", "-f", fmt, cid).split()

    def wait_healthy(self, cid, what, limit=60):
        deadline = time.time() + limit
        while time.time() < deadline:
            st = self.state(cid)
            if len(st) > 2 and st[2] == "healthy":
                return True
            time.sleep(0.5)
        return check(False, f"{what} healthy within {limit} s (state {self.state(cid)})")


# ---- metrics -------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def scrape(ip, port):
    """/metrics of one daemon as {(name, labels): value} and the raw text."""
    with urllib.request.urlopen(f"http://{ip}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m:
            samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples, text


def total(samples, name, labels=None):
    out = 0.0
    for (n, lab), v in samples.items():
        if n == name and (labels is None or labels in lab):
            out += v
    return out


# ---- the MQTT tap: every command published, counted by request id ---------

class PublishTap:
    def __init__(self, mosquitto_cid):
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["docker", "exec", mosquitto_cid, "mosquitto_sub", "-h", "127.0.0.1", "-q", "1",
             "-t", "dev/+/request/+", "-F", "%t", "-W", "1200"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            rid = line.strip().rsplit("/", 1)[-1]
            with self.lock:
                self.counts[rid] += 1

    def count(self, rid):
        with self.lock:
            return self.counts[rid]

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.counts)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---- the load ------------------------------------------------------------

class Call:
    __slots__ = ("rid", "box", "start", "end", "status", "error", "reply_id", "header_id")

    def __init__(self, rid, box):
        self.rid, self.box = rid, box
        self.start = self.end = 0.0
        self.status, self.error, self.reply_id, self.header_id = 0, "", None, None


class Load:
    """`workers` threads, each on its own keep-alive connection to nginx,
    sending commands until `count` were sent or stop() is called."""

    def __init__(self, url, name, workers, count=None, slow_share=0.0, timeout_ms=10000):
        self.host = urllib.parse.urlsplit(url).hostname
        self.port = urllib.parse.urlsplit(url).port
        self.name, self.count, self.slow_share, self.timeout_ms = name, count, slow_share, timeout_ms
        self.calls = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.next = 0
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True) for i in range(workers)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping.set()

    def join(self, limit=90):
        deadline = time.time() + limit
        for t in self.threads:
            t.join(max(0.1, deadline - time.time()))
        if any(t.is_alive() for t in self.threads):
            raise RuntimeError(f"{self.name}: load threads still running after {limit} s")
        return self.calls

    def _take(self):
        with self.lock:
            if self.stopping.is_set() or (self.count is not None and self.next >= self.count):
                return None
            n = self.next
            self.next += 1
        return n

    def _work(self, worker):
        rng = random.Random(worker)
        conn = None
        while (n := self._take()) is not None:
            box = rng.choice(SLOW_BOXES if rng.random() < self.slow_share else FAST_BOXES)
            call = Call(f"ct-{RUN}-{self.name}-{n}", box)
            body = json.dumps({"method": "ping", "params": {"n": n}})
            call.start = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=75)
                conn.request("POST", f"/v1/devices/{box}/commands?timeout_ms={self.timeout_ms}", body,
                             {"Content-Type": "application/json", "X-Request-Id": call.rid})
                resp = conn.getresponse()
                data = resp.read()
                call.status = resp.status
                call.header_id = resp.getheader("X-Request-Id")
                try:
                    doc = json.loads(data)
                    call.reply_id = doc.get("id")
                    call.error = doc.get("error", "")
                except ValueError:
                    call.error = data[:60].decode(errors="replace")
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                call.status, call.error = -1, f"{type(e).__name__}: {e}"
                if conn is not None:
                    conn.close()
                conn = None
            call.end = time.time()
            with self.lock:
                self.calls.append(call)
        if conn is not None:
            conn.close()


def statuses(calls):
    return dict(collections.Counter((c.status, c.error) for c in calls))


# ---- nginx's access log --------------------------------------------------

FIELD = re.compile(r'(\w+)="([^"]*)"|(\w+)=(\S+)')


def split_list(value):
    """nginx's $upstream_* lists: "a, b" (tries) and "a : b" (internal redirects)."""
    return [v.strip() for v in re.split(r",| : ", value) if v.strip() and v.strip() != "-"]


def nginx_log(nginx_cid, since):
    """rid -> {upstreams: [...], ustatus: [...], start, end, status} from nginx's
    access log lines (config/nginx.conf, log_format boxgate)."""
    out = run("docker", "logs", "--since", str(int(since) - 1), nginx_cid, timeout=60)
    entries = {}
    for line in out.splitlines():
        fields = {}
        for m in FIELD.finditer(line):
            if m.group(1):
                fields[m.group(1)] = m.group(2)
            else:
                fields[m.group(3)] = m.group(4)
        rid = fields.get("rid_in", "")
        if not rid.startswith(f"ct-{RUN}-"):
            continue
        parts = line.split('"')
        status = int(parts[2].split()[0]) if len(parts) > 2 else 0
        end = float(fields.get("msec", 0))
        entries[rid] = {
            "upstreams": split_list(fields.get("upstream", "")),
            "ustatus": split_list(fields.get("ustatus", "")),
            "end": end,
            "start": end - float(fields.get("rt", 0)),
            "status": status,
        }
    return entries


# ---- scenarios -----------------------------------------------------------

class Test:
    def __init__(self, args):
        self.args = args
        self.stack = Stack(args.project, args.files)
        self.url = args.url
        self.gateways = {name: self.stack.id(name) for name in ("gateway1", "gateway2", "gateway3")}
        self.nginx = self.stack.id("nginx")
        self.tap = PublishTap(self.stack.id("mosquitto"))

    def gateway_ip(self, name):
        return self.stack.ip(self.gateways[name])

    def gateway_metrics(self):
        return {name: scrape(self.gateway_ip(name), 8080)[0] for name in self.gateways}

    def bridge_metrics(self):
        return {cid[:12]: scrape(self.stack.ip(cid), 9101)[0] for cid in self.stack.ids("bridge")}

    def wait_tap(self):
        """One command through the chain until the tap has seen it (the tap subscribed)."""
        for i in range(30):
            calls = Load(self.url, f"probe{i}", 1, count=1).start().join()
            if calls[0].status == 200 and self.wait_published([calls[0].rid], 1.0):
                return
        raise RuntimeError("the MQTT tap saw no command within 30 tries")

    def wait_published(self, rids, limit):
        deadline = time.time() + limit
        while time.time() < deadline:
            if all(self.tap.count(r) >= 1 for r in rids):
                return True
            time.sleep(0.1)
        return False

    def ok_calls_valid(self, calls, what):
        bad = [c for c in calls if c.status == 200 and (c.reply_id != c.rid or c.header_id != c.rid)]
        check(not bad, f"{what}: every 200 carries its own reply and X-Request-Id"
              + (f" (first wrong: {bad[0].rid} got id={bad[0].reply_id} header={bad[0].header_id})" if bad else ""))

    def spread(self):
        log("spread: 1000 commands through nginx, 16 connections")
        before = self.gateway_metrics()
        t0 = time.time()
        calls = Load(self.url, "spread", 16, count=1000).start().join()
        took = time.time() - t0
        after = self.gateway_metrics()
        st = statuses(calls)
        check(len(calls) == 1000 and st == {(200, ""): 1000},
              f"spread: 1000 commands all 200 ({st}, {took:.1f} s, {1000 / took:.0f}/s)")
        self.ok_calls_valid(calls, "spread")
        shares = {n: total(after[n], "boxgate_commands_total", 'outcome="ok"')
                  - total(before[n], "boxgate_commands_total", 'outcome="ok"') for n in self.gateways}
        check(sum(shares.values()) == 1000 and all(v >= 200 for v in shares.values()),
              f"spread: each gateway's boxgate_commands_total{{outcome=\"ok\"}} grew by >= 200 of 1000 ({shares})")

    def request(self, method, path, body=None, headers=None):
        u = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request(method, path, body, headers or {})
            resp = conn.getresponse()
            data = resp.read()
            try:
                doc = json.loads(data)
            except ValueError:
                doc = {}
            return resp.status, resp.getheader("X-Request-Id"), doc
        finally:
            conn.close()

    def limits(self):
        log("limits: nginx's own answers and the gateway's limits through it")
        path = "/v1/devices/box-1/commands?timeout_ms=5000"
        json_type = {"Content-Type": "application/json"}
        status, rid, doc = self.request("POST", path, '{"method":"ping"}', json_type)
        check(status == 200 and rid and re.fullmatch(r"[0-9a-f-]{36}", rid) and doc.get("id") == rid,
              f"limits: without X-Request-Id the gateway's own id comes back through nginx ({status}, {rid})")
        big = '{"method":"ping","params":{"pad":"' + "x" * (250 * 1024) + '"}}'
        status, _, doc = self.request("POST", path, big, {**json_type, "X-Request-Id": f"ct-{RUN}-limits-250k"})
        check(status == 200 and doc.get("id") == f"ct-{RUN}-limits-250k", f"limits: a 250 KiB command passes nginx ({status})")
        huge = '{"method":"ping","params":{"pad":"' + "x" * (300 * 1024) + '"}}'
        status, _, doc = self.request("POST", path, huge, {**json_type, "X-Request-Id": f"ct-{RUN}-limits-300k"})
        check(status == 413 and doc.get("error") == "body_too_large",
              f"limits: a 300 KiB command is refused 413 body_too_large ({status}, {doc})")
        check(self.tap.count(f"ct-{RUN}-limits-300k") == 0, "limits: and never published")
        status, _, doc = self.request("GET", "/metrics")
        check(status == 404, f"limits: the gateways' ops endpoints are not served through nginx ({status})")
        status, _, doc = self.request("GET", "/healthz")
        check(status == 200 and doc.get("status") == "ok", f"limits: nginx's /healthz ({status})")

    def drain(self):
        name = "gateway2"
        cid = self.gateways[name]
        ip = self.gateway_ip(name)
        log(f"drain: SIGTERM to {name} ({ip}) under load (24 connections, 30 % slow boxes)")
        load = Load(self.url, "drain", 24, slow_share=0.3).start()
        time.sleep(3)
        pending = total(scrape(ip, 8080)[0], "boxgate_commands_pending")
        t_sig = time.time()
        run("docker", "kill", "-s", "TERM", cid)
        exited = None
        deadline = time.time() + 75
        while time.time() < deadline:
            st = self.stack.state(cid)
            if st[0] != "running":
                exited = st
                break
            time.sleep(0.2)
        t_exit = time.time()
        time.sleep(4)
        load.stop()
        calls = load.join()
        log(f"drain: {name} had {pending:.0f} pending at SIGTERM; it stopped after {t_exit - t_sig:.1f} s; "
            f"{len(calls)} calls {statuses(calls)}")
        check(exited is not None and exited[1] == "0", f"drain: {name} exited 0 after SIGTERM ({exited})")
        logs = subprocess.run(["docker", "logs", cid], capture_output=True, text=True, timeout=30)
        text = logs.stdout + logs.stderr
        check("draining" in text and "drained; stopping" in text, f"drain: {name} logged its drain")
        entries = nginx_log(self.nginx, t_sig - 30)
        target = f"{ip}:8080"
        handed = [c for c in calls if c.rid in entries and entries[c.rid]["upstreams"][:1] == [target]
                  and entries[c.rid]["start"] < t_sig]
        in_flight = [c for c in handed if entries[c.rid]["end"] > t_sig]
        bad_handed = [c for c in handed if c.status != 200]
        check(len(in_flight) >= 1,
              f"drain: {len(in_flight)} calls were in flight on {name} at SIGTERM ({pending:.0f} pending)")
        check(not bad_handed, f"drain: all {len(handed)} calls nginx handed {name} before SIGTERM answered 200"
              + (f"; failed: {[(c.rid, c.status, c.error) for c in bad_handed[:5]]}" if bad_handed else ""))
        after = [c for c in calls if c.rid in entries and entries[c.rid]["start"] >= t_sig
                 and target in entries[c.rid]["upstreams"]]
        bad = [c for c in after if c.status != 200 or entries[c.rid]["upstreams"][-1] == target
               or entries[c.rid]["ustatus"][0] not in ("503", "502", "504")]
        check(not bad, f"drain: the {len(after)} calls nginx tried on {name} after SIGTERM were refused unsent "
              f"(503 shutting_down while draining, no connection once it exited) and answered 200 by another "
              f"gateway{'' if not bad else ': ' + str([(c.rid, c.status, entries[c.rid]) for c in bad[:3]])}")
        counts = self.tap.snapshot()
        twice = [(c.rid, counts[c.rid]) for c in after if counts[c.rid] != 1]
        check(not twice, f"drain: each of them was published once ({twice[:5]})")
        late = [c for c in after if entries[c.rid]["start"] > t_exit + 0.5]
        probes = int((time.time() - t_exit) / 3) + 2
        check(len(late) <= probes,
              f"drain: nginx stopped sending {name} new calls: {len(late)} tried it from 0.5 s after it exited "
              f"(at most {probes}: one probe per fail_timeout)")
        check(all(c.status == 200 for c in calls), f"drain: no call failed ({statuses(calls)})")
        missing = [c.rid for c in calls if c.rid not in entries]
        check(not missing, f"drain: nginx logged every call ({len(missing)} missing)")
        self.ok_calls_valid(calls, "drain")
        self.restart(name)

    def kill(self):
        name = "gateway3"
        cid = self.gateways[name]
        ip = self.gateway_ip(name)
        log(f"kill: SIGKILL to {name} ({ip}) under load (24 connections, 30 % slow boxes)")
        load = Load(self.url, "kill", 24, slow_share=0.3).start()
        time.sleep(3)
        pending = total(scrape(ip, 8080)[0], "boxgate_commands_pending")
        t_kill = time.time()
        run("docker", "kill", "-s", "KILL", cid)
        time.sleep(5)
        load.stop()
        calls = load.join()
        log(f"kill: {name} had {pending:.0f} pending at SIGKILL; {len(calls)} calls {statuses(calls)}")
        time.sleep(3)  # the slow boxes' replies to the lost calls arrive (2 s)
        entries = nginx_log(self.nginx, t_kill - 30)
        target = f"{ip}:8080"
        failed = [c for c in calls if c.status != 200]
        check(failed and all(c.status == 502 and c.error == "bad_gateway" for c in failed),
              f"kill: the calls that failed are 502 ({len(failed)}: {statuses(failed)})")
        on_victim = [c for c in failed if c.rid in entries and entries[c.rid]["upstreams"] == [target]
                     and entries[c.rid]["start"] < t_kill]
        check(len(on_victim) == len(failed),
              f"kill: every failed call was on {name} before the kill and was never sent to another gateway "
              f"({len(on_victim)} of {len(failed)}; e.g. {[entries.get(c.rid) for c in failed[:2]]})")
        check(len(failed) <= pending + 24,
              f"kill: no more failed than {name} had in flight ({len(failed)} <= {pending:.0f} pending + 24 connections)")
        late = [c for c in calls if c.start > t_kill + 0.2 and c.status != 200]
        check(not late, f"kill: every call started after the kill answered 200 ({statuses(late)})")
        counts = self.tap.snapshot()
        check(all(counts[c.rid] <= 1 for c in failed),
              f"kill: no lost call was published twice ({sum(1 for c in failed if counts[c.rid] == 1)} of "
              f"{len(failed)} were published once, the rest never)")
        self.ok_calls_valid(calls, "kill")
        self.restart(name)

    def restart(self, name):
        cid = self.gateways[name]
        st = self.stack.state(cid)
        if st[0] != "running":
            run("docker", "start", cid)
        self.stack.wait_healthy(cid, name)
        time.sleep(3.5)  # nginx's fail_timeout: then it probes the gateway again
        before = self.gateway_metrics()
        calls = Load(self.url, f"after-{name}", 8, count=300).start().join()
        after = self.gateway_metrics()
        got = total(after[name], "boxgate_commands_total") - total(before[name], "boxgate_commands_total")
        check(statuses(calls) == {(200, ""): 300} and got >= 30,
              f"{name} back: 300 commands all 200, {got:.0f} of them on {name} ({statuses(calls)})")

    def bridges(self):
        log("bridges: docker-compose up --scale bridge=3")
        self.stack.compose("up", "-d", "--no-deps", "--no-recreate", "--scale", "bridge=3", "bridge")
        ids = self.stack.ids("bridge")
        check(len(ids) == 3, f"bridges: 3 bridge containers ({len(ids)})")
        for b in ids:
            self.stack.wait_healthy(b, f"bridge {b[:12]}")
        time.sleep(3)  # late replies of the earlier scenarios land
        gw0, br0 = self.gateway_metrics(), self.bridge_metrics()
        calls = Load(self.url, "bridges", 24, count=900, slow_share=0.1).start().join()
        time.sleep(1)
        gw1, br1 = self.gateway_metrics(), self.bridge_metrics()

        def delta(m1, m0, name):
            return {k: total(m1[k], name) - total(m0.get(k, {}), name) for k in m1}
        fwd = delta(br1, br0, "boxgate_replies_forwarded_total")
        unclaimed = delta(br1, br0, "boxgate_replies_unclaimed_total")
        dropped = delta(br1, br0, "boxgate_replies_dropped_total")
        ignored = delta(gw1, gw0, "boxgate_replies_ignored_total")
        st = statuses(calls)
        check(st == {(200, ""): 900}, f"bridges: 900 commands all 200 ({st})")
        self.ok_calls_valid(calls, "bridges")
        check(sum(fwd.values()) == 900 and all(v > 0 for v in fwd.values()),
              f"bridges: the 3 bridges forwarded 900 replies in all, each some ({fwd})")
        check(sum(unclaimed.values()) == 0 and sum(dropped.values()) == 0 and sum(ignored.values()) == 0,
              f"bridges: no reply unclaimed ({unclaimed}), dropped ({dropped}) or ignored by a gateway ({ignored})")
        counts = self.tap.snapshot()
        check(all(counts[c.rid] == 1 for c in calls), "bridges: each of the 900 commands was published once")

    def write_metrics(self):
        _, text = scrape(self.gateway_ip("gateway1"), 8080)
        with open(f"{self.args.metrics_out}/gateway.metrics", "w") as f:
            f.write(text)
        _, text = scrape(self.stack.ip(self.stack.ids("bridge")[0]), 9101)
        with open(f"{self.args.metrics_out}/bridge.metrics", "w") as f:
            f.write(text)

    def run(self):
        try:
            self.wait_tap()
            scenarios = [self.spread, self.limits, self.drain, self.kill, self.bridges]
            if self.args.only:
                scenarios = [getattr(self, name) for name in self.args.only.split(",")]
            for scenario in scenarios:
                t0 = time.time()
                scenario()
                log(f"{scenario.__name__}: {time.time() - t0:.1f} s")
            counts = self.tap.snapshot()
            twice = [r for r, n in counts.items() if n > 1]
            check(not twice, f"no command was ever published twice ({len(counts)} published; twice: {twice[:5]})")
            if not self.args.only:
                self.write_metrics()
        finally:
            self.tap.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", required=True)
    p.add_argument("--url", required=True, help="nginx, e.g. http://127.0.0.1:8080")
    p.add_argument("--metrics-out", required=True, help="directory for gateway.metrics and bridge.metrics")
    p.add_argument("--only", help="comma-separated scenarios (spread,drain,kill,bridges), for debugging")
    p.add_argument("files", nargs="*", help="docker-compose -f arguments")
    args = p.parse_args()
    t0 = time.time()
    Test(args).run()
    log(f"{time.time() - t0:.0f} s, {len(FAILURES)} failed checks")
    if FAILURES:
        for f in FAILURES:
            log(f"FAILED: {f}")
        sys.exit(1)


if __name__ == "__main__":
    main()
