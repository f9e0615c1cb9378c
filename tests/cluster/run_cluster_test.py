#!/usr/bin/env python3
"""scripts/run --cluster, tested the way a newcomer uses it.

Starts `scripts/run --cluster` on free loopback ports (its env overrides) with
the binaries of one build directory, waits for "boxgate is running", sends
commands through nginx and checks that every one is answered 200 and that
they spread over the 3 gateways (each gateway's /metrics). Then stops it as
Ctrl-C does (SIGINT to the script) and checks that no process it started is
left: every pid of its `pids` file, and their children seen while running
(nginx's workers).

    run_cluster_test.py BUILD_DIR

Exit 0 passed, 1 failed, 77 skipped (nginx is not installed).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMMANDS = 30
START_TIMEOUT_S = 40
STOP_TIMEOUT_S = 20


def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for good; it only waits for its parent to reap it.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_of(pids):
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid in pids:
            found.add(int(entry))
    return found


def http(method, url, body=None, timeout=10):
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ok_count(port):
    _, text = http("GET", f"http://127.0.0.1:{port}/metrics")
    for line in text.splitlines():
        if line.startswith('boxgate_commands_total{outcome="ok"} '):
            return int(float(line.split()[1]))
    return 0


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    build_dir = os.path.abspath(sys.argv[1])
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        print("SKIP: nginx is not installed (Debian package nginx)")
        return 77
    redis, mqtt, http_port, g1, g2, g3, b1, b2 = free_ports(8)
    gateways = [g1, g2, g3]
    run_dir = tempfile.mkdtemp(prefix="boxgate-cluster-test-")
    env = dict(os.environ, REDIS_PORT=str(redis), MQTT_PORT=str(mqtt), HTTP_PORT=str(http_port),
               GATEWAY_PORTS=f"{g1} {g2} {g3}", BRIDGE_PORTS=f"{b1} {b2}", RUN_DIR=run_dir,
               BOXGATE_BUILD_DIR=build_dir)
    out_path = os.path.join(run_dir, "run.out")
    out = open(out_path, "w")
    started = time.monotonic()
    proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run"), "--cluster"], env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    failures = []
    seen_children = set()
    listed = {}
    try:
        while time.monotonic() - started < START_TIMEOUT_S:
            with open(out_path) as f:
                text = f.read()
            if "boxgate is running as a cluster" in text:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        with open(out_path) as f:
            text = f.read()
        if "boxgate is running as a cluster" not in text:
            print(text)
            failures.append("scripts/run --cluster did not get ready within %d s" % START_TIMEOUT_S)
            return 1
        print(f"ready after {time.monotonic() - started:.1f} s")
        curl_line = f"http://127.0.0.1:{http_port}/v1/devices/box-1/commands"
        if curl_line not in text:
            failures.append("the printed curl does not name nginx's port")
        with open(os.path.join(run_dir, "pids")) as f:
            for line in f:
                name, pid = line.split()
                listed[int(pid)] = name
        expected = {"redis", "mosquitto", "bridge1", "bridge2", "gateway1", "gateway2", "gateway3", "nginx",
                    "devsim"}
        if set(listed.values()) != expected:
            failures.append(f"pids file lists {sorted(listed.values())}, expected {sorted(expected)}")
        seen_children = children_of(set(listed))

        before = [ok_count(p) for p in gateways]
        statuses = {}
        for i in range(COMMANDS):
            box = f"box-{1 + i % 100}"
            status, body = http("POST", f"http://127.0.0.1:{http_port}/v1/devices/{box}/commands?timeout_ms=5000",
                                json.dumps({"method": "ping", "params": {"n": i}}).encode())
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200 and json.loads(body).get("result", {}).get("echo") != {"n": i}:
                failures.append(f"command {i}: reply {body!r} is not its own")
        after = [ok_count(p) for p in gateways]
        spread = [a - b for a, b in zip(after, before)]
        print(f"statuses {statuses}; commands per gateway {spread}")
        if statuses.get(200) != COMMANDS:
            failures.append(f"not every command answered 200: {statuses}")
        if sum(spread) != COMMANDS:
            failures.append(f"the gateways counted {sum(spread)} commands, {COMMANDS} were sent")
        if min(spread) < COMMANDS // 10:
            failures.append(f"commands did not spread over the 3 gateways: {spread}")
        seen_children |= children_of(set(listed))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does to the script
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                failures.append(f"scripts/run did not stop within {STOP_TIMEOUT_S} s of SIGINT")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.close()
        # Stopped in order, devsim still reaches the broker to announce its
        # boxes offline (a broker stopped first fails that publish).
        devsim_log = os.path.join(run_dir, "devsim.log")
        if os.path.exists(devsim_log):
            with open(devsim_log, errors="replace") as f:
                said = [line for line in f if "offline status:" in line or "disconnect:" in line]
            if said:
                failures.append(f"devsim could not say goodbye at the stop: {said[0].strip()}")
        left = [f"{listed.get(p, 'child')} {p}" for p in sorted(set(listed) | seen_children) if alive(p)]
        if left:
            failures.append(f"processes left after the stop: {left}")
            for p in set(listed) | seen_children:
                if alive(p):
                    os.kill(p, signal.SIGKILL)
        with open(out_path) as f:
            tail = f.read().splitlines()[-1:]
        print("scripts/run said:", *tail)
        print(f"whole run {time.monotonic() - started:.1f} s; logs in {run_dir}")
        for failure in failures:
            print("FAIL:", failure)
    if not failures:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
