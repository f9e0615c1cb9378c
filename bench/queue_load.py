#!/usr/bin/env python3
"""Queues commands for many boxes through the gateway (bench/run queue).

    queue_load.py PORT BOXES PER_BOX THREADS TTL_MS OUT

POSTs PER_BOX commands to each of box-1..box-BOXES with ?ttl_ms=TTL_MS and
Prefer: respond-async, ids "<box>-c<i>" in order per box (one box's commands
from one thread, so they are accepted in order), over THREADS keep-alive
connections to 127.0.0.1:PORT. Writes "status=count ..." and the elapsed time
to OUT, and the states of the 202s ("queued=N pending=M").
"""
import http.client
import json
import sys
import threading
import time
from collections import Counter


def main():
    port, boxes, per_box, threads, ttl = (int(a) for a in sys.argv[1:6])
    out = sys.argv[6]
    statuses, states = Counter(), Counter()
    lock = threading.Lock()

    def worker(first):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, seen = Counter(), Counter()
        for n in range(first, boxes + 1, threads):
            box = f"box-{n}"
            for i in range(per_box):
                body = json.dumps({"method": "step", "params": {"n": i}})
                headers = {"Content-Type": "application/json", "Prefer": "respond-async",
                           "X-Request-Id": f"{box}-c{i}"}
                conn.request("POST", f"/v1/devices/{box}/commands?ttl_ms={ttl}&timeout_ms=10000", body, headers)
                r = conn.getresponse()
                text = r.read()
                mine[r.status] += 1
                if r.status == 202:
                    seen[json.loads(text).get("state", "?")] += 1
        with lock:
            statuses.update(mine)
            states.update(seen)

    start = time.monotonic()
    pool = [threading.Thread(target=worker, args=(t + 1,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - start
    with open(out, "w") as f:
        f.write(" ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
        f.write(f" elapsed_s={elapsed:.2f} ")
        f.write(" ".join(f"{k}={v}" for k, v in sorted(states.items())) + "\n")


if __name__ == "__main__":
    main()
