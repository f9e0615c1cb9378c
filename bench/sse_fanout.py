#!/usr/bin/env python3
"""bench/sse_fanout.py: holds N Server-Sent Events streams open on a gateway
and measures, for every event delivered, the latency from the device's publish
(the "sent_us" devsim puts in each telemetry payload) to its arrival here.

  sse_fanout.py PORT STREAMS BOXES SECONDS OUTFILE

Stream i follows /v1/devices/box-(i % BOXES + 1)/events. One asyncio loop,
stdlib only. Prints nothing; writes one line of key=value figures to OUTFILE:
streams_open, deliveries, p50_us, p99_us, max_us, cut (streams the gateway closed).
"""
import asyncio, re, sys, time

SENT = re.compile(rb'"sent_us":(\d+)')

async def stream(port, path, lat, state, stop):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        state["failed"] += 1
        return
    w.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    await w.drain()
    head = await r.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        state["failed"] += 1
        w.close()
        return
    state["open"] += 1
    while not stop.is_set():
        try:
            line = await asyncio.wait_for(r.readline(), 1.0)
        except asyncio.TimeoutError:
            continue
        if not line:
            state["cut"] += 1
            break
        if line.startswith(b"data: "):
            m = SENT.search(line)
            if m:
                lat.append(time.time_ns() // 1000 - int(m.group(1)))
    w.close()

async def main():
    port, streams, boxes, seconds, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    lat, state, stop = [], {"open": 0, "failed": 0, "cut": 0}, asyncio.Event()
    tasks = [asyncio.create_task(stream(port, f"/v1/devices/box-{i % boxes + 1}/events", lat, state, stop))
             for i in range(streams)]
    for _ in range(100):  # wait for the streams to open (10 s at most)
        if state["open"] + state["failed"] >= streams:
            break
        await asyncio.sleep(0.1)
    lat.clear()  # measure from here
    with open(out + ".ready", "w") as f:
        f.write("ready\n")
    await asyncio.sleep(seconds)
    stop.set()
    samples = sorted(lat)
    await asyncio.gather(*tasks, return_exceptions=True)
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] if samples else 0
    with open(out, "w") as f:
        f.write(f"streams_open={state['open']} failed={state['failed']} deliveries={len(samples)} "
                f"p50_us={pick(0.5)} p99_us={pick(0.99)} max_us={samples[-1] if samples else 0} cut={state['cut']}\n")

asyncio.run(main())
