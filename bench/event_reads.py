#!/usr/bin/env python3
"""bench/event_reads.py: what hostile event readers cost the gateway.

  bench/event_reads.py [--build-dir DIR] [--fleet N]

Starts its own redis-server, mosquitto, boxgate-bridge and boxgate-gateway
(from DIR, default build/) on free loopback ports in a temporary directory,
and measures, each on a fresh gateway:

  catchup  gateway RSS growth (peak VmHWM - RSS before) while 4 SSE readers
           resume a box holding 64 events of 1 MB (Last-Event-ID: 0-0) and
           read nothing (SO_RCVBUF 4 KiB), over 4 s
  history  gateway RSS growth while 4 clients read
           GET /v1/devices/box-1/events?limit=1000 of the same box at once
           (bodies read in full; their sizes are printed)
  scan     p50/p99 of GET /v1/devices/box-1/state (one Redis GET on the
           commands' connection), one caller in a loop for 4 s alone, then
           for two 2 s windows while 20 fleet readers filtered to a box
           pattern that matches nothing (/v1/events?box=nomatch-*,
           Last-Event-ID: 0-0) resume over a fleet stream of N entries
           (default 100000); with Redis's XRANGE count after each window

Python 3 standard library only. Every process started here is stopped by its
pid on exit. About a minute per run; prints one line per figure.
"""
import argparse, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, threading, time

procs = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(name, args, run_dir):
    log = open(os.path.join(run_dir, name + ".log"), "wb")
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(8)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in procs:
        procs.remove(p)


def wait_until(what, check, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if check():
                return
        except (OSError, subprocess.CalledProcessError):
            pass
        time.sleep(0.05)
    sys.exit(f"event_reads: {what} not ready in {seconds} s")


def http_get(port, path, headers=None, timeout=10):
    """One GET on a new connection; returns (status, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def redis(port, *args, stdin=None):
    return subprocess.run(["redis-cli", "-p", str(port), *args], input=stdin, capture_output=True, check=True).stdout


def kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class Stack:
    def __init__(self, build, run_dir):
        self.build, self.run_dir = build, run_dir
        self.redis_port, self.mqtt_port = free_port(), free_port()
        start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--protected-mode", "no"], run_dir)
        wait_until("redis", lambda: redis(self.redis_port, "ping").strip() == b"PONG")
        conf = os.path.join(run_dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
            if os.getuid() == 0:
                f.write("user root\n")
        start("mosquitto", ["mosquitto", "-c", conf], run_dir)
        wait_until("mosquitto", lambda: socket.create_connection(("127.0.0.1", self.mqtt_port), 1).close() or True)
        self.bridge_port = free_port()
        start("bridge", [os.path.join(build, "src/bridge/boxgate-bridge"), "--http-host", "127.0.0.1", "--http-port",
                         str(self.bridge_port), "--redis-port", str(self.redis_port), "--mqtt-uri",
                         f"tcp://127.0.0.1:{self.mqtt_port}", "--log-level", "warn"], run_dir)
        self.gateway = None

    def start_gateway(self):
        if self.gateway:
            stop(self.gateway)
        self.gw_port = free_port()
        self.gateway = start("gateway", [os.path.join(self.build, "src/gateway/boxgate-gateway"), "--http-host",
                                         "127.0.0.1", "--http-port", str(self.gw_port), "--redis-port",
                                         str(self.redis_port), "--mqtt-uri", f"tcp://127.0.0.1:{self.mqtt_port}",
                                         "--log-level", "warn"], self.run_dir)
        wait_until("gateway", lambda: http_get(self.gw_port, "/readyz", timeout=1)[0] == 200)
        http_get(self.gw_port, "/v1/devices/box-1/events?limit=1")  # warm the Redis connection
        time.sleep(0.5)
        return kib(self.gateway.pid, "VmRSS")


def store_events(port, key, box, count, size):
    payload = "x" * size
    script = ("for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'box', ARGV[2], 'name', 'big', "
              "'payload', ARGV[3], 'received_ms', '1') end return redis.call('XLEN', KEYS[1])")
    # The payload through stdin (-x: the last argument): 1 MB is too long for argv on some systems.
    redis(port, "-x", "EVAL", script, "1", key, str(count), box, stdin=payload.encode())


def fill_fleet(port, entries):
    script = ("for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'box', 'box-' .. (i % 100), "
              "'name', 'n', 'payload', '{\"t\":1}', 'received_ms', '1') end return 1")
    for _ in range(entries // 10000):
        redis(port, "EVAL", script, "1", "dev/events", "10000")


def stalled_reader(port, path, headers):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{extra}\r\n".encode())
    return s


def catchup(stack):
    before = stack.start_gateway()
    readers = [stalled_reader(stack.gw_port, "/v1/devices/box-1/events", {"Last-Event-ID": "0-0"}) for _ in range(4)]
    time.sleep(4)
    peak = kib(stack.gateway.pid, "VmHWM")
    for s in readers:
        s.close()
    print(f"catchup: 4 stalled readers of 64 x 1 MB: gateway RSS +{(peak - before) / 1024:.1f} MiB (peak)")


def history(stack):
    before = stack.start_gateway()
    sizes = []

    def read():
        status, body = http_get(stack.gw_port, "/v1/devices/box-1/events?limit=1000", timeout=60)
        sizes.append((status, len(body)))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = kib(stack.gateway.pid, "VmHWM")
    bodies = ", ".join(f"{st}/{n / 1e6:.1f} MB" for st, n in sizes)
    print(f"history: 4 parallel limit=1000 reads: gateway RSS +{(peak - before) / 1024:.1f} MiB (peak); "
          f"bodies {bodies}")


def latency(port, seconds):
    samples = []
    with socket.create_connection(("127.0.0.1", port)) as s:
        request = b"GET /v1/devices/box-1/state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        end = time.time() + seconds
        while time.time() < end:
            t0 = time.perf_counter()
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += s.recv(65536)
            samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)], len(samples)


def xrange_calls(stack):
    for line in redis(stack.redis_port, "INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_xrange:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def scan(stack, readers):
    stack.start_gateway()
    redis(stack.redis_port, "SET", "dev/box-1/state", '{"fw":"1.0"}')
    p50, p99, n = latency(stack.gw_port, 4)
    print(f"scan: GET state alone: p50 {p50:.3f} ms, p99 {p99:.3f} ms ({n} calls)")
    socks = []
    for _ in range(readers):
        s = stalled_reader(stack.gw_port, "/v1/events?box=nomatch-*", {"Last-Event-ID": "0-0"})
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        socks.append(s)
    # The readers' sockets are drained in the background (they get only heartbeats).
    stop_drain = threading.Event()

    def drain():
        while not stop_drain.is_set():
            for s in socks:
                s.setblocking(False)
                try:
                    s.recv(65536)
                except BlockingIOError:
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=drain)
    t.start()
    for window in ("0-2 s", "2-4 s"):
        p50, p99, n = latency(stack.gw_port, 2)
        print(f"scan: GET state with {readers} fleet readers matching nothing, {window} after they opened: "
              f"p50 {p50:.3f} ms, p99 {p99:.3f} ms ({n} calls); Redis XRANGE calls so far {xrange_calls(stack)}")
    stop_drain.set()
    t.join()
    for s in socks:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--fleet", type=int, default=100000)
    args = ap.parse_args()
    for tool in ("redis-server", "redis-cli", "mosquitto"):
        if not shutil.which(tool):
            sys.exit(f"event_reads: {tool} is missing (Debian: apt-get install redis-server redis-tools mosquitto)")
    run_dir = tempfile.mkdtemp(prefix="boxgate-event-reads-")
    print(f"event_reads: build {os.path.abspath(args.build_dir)}, run directory {run_dir}")
    try:
        stack = Stack(args.build_dir, run_dir)
        store_events(stack.redis_port, "dev/box-1/events", "box-1", 64, 1000 * 1000)
        catchup(stack)
        history(stack)
        fill_fleet(stack.redis_port, args.fleet)
        scan(stack, 20)
    finally:
        for p in reversed(list(procs)):
            stop(p)


if __name__ == "__main__":
    main()
