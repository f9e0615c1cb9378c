#!/usr/bin/env python3
"""Waits (up to 60 s) until Prometheus reports every boxgate target up.

    check_prometheus.py PROMETHEUS_URL --expect boxgate-gateway=3 --expect boxgate-bridge=2

Reads /api/v1/targets: each job must have exactly the expected number of
active targets, all with health "up". Standard library only.
"""

import argparse
import json
import sys
import time
import urllib.request


def targets(url):
    with urllib.request.urlopen(f"{url}/api/v1/targets?state=active", timeout=5) as resp:
        doc = json.load(resp)
    by_job = {}
    for t in doc["data"]["activeTargets"]:
        by_job.setdefault(t["labels"]["job"], []).append((t["labels"]["instance"], t["health"], t.get("lastError", "")))
    return by_job


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("url")
    p.add_argument("--expect", action="append", default=[], help="JOB=COUNT")
    p.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    expect = {k: int(v) for k, v in (e.split("=", 1) for e in args.expect)}
    deadline = time.time() + args.timeout
    seen = {}
    while time.time() < deadline:
        try:
            seen = targets(args.url)
        except (OSError, ValueError, KeyError):
            seen = {}
        if all(len(seen.get(job, [])) == n and all(h == "up" for _, h, _ in seen[job]) for job, n in expect.items()):
            for job in expect:
                print(f"    check_prometheus: {job}: {len(seen[job])} targets up: "
                      f"{', '.join(sorted(i for i, _, _ in seen[job]))}")
            return
        time.sleep(1)
    sys.exit(f"check_prometheus: targets not all up within {args.timeout:.0f} s: expected {expect}, saw {seen}")


if __name__ == "__main__":
    main()
