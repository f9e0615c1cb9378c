#!/usr/bin/env python3
"""What devsim's command log says of a queue run (bench/run queue).

    queue_report.py COMMAND_LOG BOXES PER_BOX

The log has one JSON line per command a box ran: {"box","id","t_ms",
"online_ms"} (devsim --command-log). Checks that every box received its
PER_BOX commands "<box>-c0".."<box>-c{PER_BOX-1}" once each, in that order,
and prints one line of key=value: received, duplicates, out_of_order,
missing_boxes, last_online_ms, last_received_ms, online_to_last_ms (the last
box online to the last command received), first_p50_ms / first_p99_ms /
first_max_ms (a box online -> its first command).
"""
import json
import sys
from collections import defaultdict


def percentile(values, p):
    if not values:
        return -1
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    path, boxes, per_box = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    got = defaultdict(list)
    online = {}
    first = {}  # box -> ms from its (last) online to its first command
    last_received = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("dup"):
                continue
            box = e["box"]
            if not e["id"].startswith(box + "-c"):
                continue  # not one of the queued ones (bench/run's chain check)
            got[box].append(e["id"])
            online[box] = max(online.get(box, 0), e.get("online_ms", 0))
            last_received = max(last_received, e["t_ms"])
            first.setdefault(box, e["t_ms"] - e.get("online_ms", e["t_ms"]))
    firsts = list(first.values())
    received = sum(len(v) for v in got.values())
    dups = sum(len(v) - len(set(v)) for v in got.values())
    out_of_order = 0
    for n in range(1, boxes + 1):
        box = f"box-{n}"
        want = [f"{box}-c{i}" for i in range(per_box)]
        if got.get(box, []) != want:
            out_of_order += 1 if got.get(box) else 0
    missing = sum(1 for n in range(1, boxes + 1) if f"box-{n}" not in got)
    last_online = max(online.values()) if online else 0
    print(f"received={received} duplicates={dups} boxes_not_exact={out_of_order} missing_boxes={missing} "
          f"last_online_ms={last_online} last_received_ms={last_received} "
          f"online_to_last_ms={last_received - last_online if last_online else -1} "
          f"first_p50_ms={percentile(firsts, 50)} first_p99_ms={percentile(firsts, 99)} "
          f"first_max_ms={max(firsts) if firsts else -1}")


if __name__ == "__main__":
    main()
