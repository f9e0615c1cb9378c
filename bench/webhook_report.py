#!/usr/bin/env python3
"""The webhooks mode's check: every succeeded command delivered once, and when.

    webhook_report.py RECEIVED REDIS_PORT STREAM

RECEIVED is bench/webhook_receiver.c's file (one line per delivery:
webhook-id, type, receive time in unix us, data.at_ms, stream id ms).
STREAM is the outcome stream ({prefix}/commands) on 127.0.0.1:REDIS_PORT;
its `succeeded` entries are what the endpoint (kinds: command.succeeded,
created before the first command) must have got, each as webhook-id
commands-<stream id>.

Prints one line of key=value: entries (succeeded entries in the stream),
received (deliveries of command.succeeded), unique, duplicates (deliveries of
an id already received), missing (entries never delivered), unexpected (ids
not in the stream), and in microseconds p50/p99/max of receive - data.at_ms
(the bridge stored the reply -> the receiver has the POST; first delivery of
each id) and p50/p99 of its two parts: at_ms -> the stream id (the bridge's
XADD reached Redis) and the stream id -> receive (the gateway's feed and the
POST). The stream ids and at_ms are milliseconds, so each part is +-1 ms.
"""
import socket
import sys


def resp(f):
    line = f.readline()
    if not line:
        raise EOFError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [resp(f) for _ in range(n)]
    raise RuntimeError(f"unexpected reply {line!r}")


def command(sock, f, *args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    sock.sendall(b"".join(out))
    return resp(f)


def succeeded_ids(port, stream):
    """Stream ids of the `succeeded` entries, read in pages of 1000. In a
    Redis Cluster (bench/run --redis cluster) PORT is any node: a MOVED
    answer names the node that has the stream."""
    ids = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        f = sock.makefile("rb")
        start = "-"
        while True:
            try:
                page = command(sock, f, "XRANGE", stream, start, "+", "COUNT", 1000)
            except RuntimeError as e:
                if str(e).startswith("MOVED ") and not ids:
                    return succeeded_ids(int(str(e).rsplit(":", 1)[1]), stream)
                raise
            if not page:
                break
            for entry_id, fields in page:
                values = dict(zip(fields[0::2], fields[1::2]))
                if values.get("name") == "succeeded":
                    ids.append(entry_id)
            start = "(" + page[-1][0]
    return ids


def pct(sorted_values, p):
    if not sorted_values:
        return 0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    received_file, port, stream = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    expected = {"commands-" + i for i in succeeded_ids(port, stream)}

    first = {}  # webhook-id -> (latency us, at_ms -> stream id us, stream id -> receive us)
    received = duplicates = 0
    with open(received_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 5 or parts[1] != "command.succeeded":
                continue
            wid, recv_us, at_ms, stream_ms = parts[0], int(parts[2]), int(parts[3]), int(parts[4])
            received += 1
            if wid in first:
                duplicates += 1
                continue
            first[wid] = (recv_us - at_ms * 1000, (stream_ms - at_ms) * 1000, recv_us - stream_ms * 1000)

    total = sorted(v[0] for v in first.values())
    to_stream = sorted(v[1] for v in first.values())
    to_receiver = sorted(v[2] for v in first.values())
    print(
        f"entries={len(expected)} received={received} unique={len(first)} duplicates={duplicates} "
        f"missing={len(expected - first.keys())} unexpected={len(first.keys() - expected)} "
        f"p50_us={pct(total, 50)} p99_us={pct(total, 99)} max_us={total[-1] if total else 0} "
        f"stream_p50_us={pct(to_stream, 50)} stream_p99_us={pct(to_stream, 99)} "
        f"feed_p50_us={pct(to_receiver, 50)} feed_p99_us={pct(to_receiver, 99)}"
    )


if __name__ == "__main__":
    main()
