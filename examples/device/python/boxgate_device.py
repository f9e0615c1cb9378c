#!/usr/bin/env python3
"""A boxgate device: one box on one MQTT connection (docs/devices.md explains each rule).
Needs paho-mqtt 1.6 (apt-get install python3-paho-mqtt). Run: boxgate_device.py --box box-1"""
import argparse, collections, json, logging, os, random, re, signal, time, urllib.parse
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")  # box and request ids (the contract's pattern)
CACHE_IDS, CACHE_BYTES = 64, 256 * 1024  # recent ids and replies, to answer a duplicate without running it again
MAX_DEPTH, SESSION_EXPIRY_S, BACKOFF_MAX_S = 64, 86400, 30.0  # MAX_DEPTH: the gateway's limit too


def too_deep(text):
    """Python's json module recurses: a deep document is refused first, by a scan that does not."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if escaped:
            escaped = False
        elif in_string:
            escaped, in_string = ch == "\\", ch != '"'
        elif ch == '"':
            in_string = True
        elif ch in "[{]}":
            depth += 1 if ch in "[{" else -1
            if depth > MAX_DEPTH:
                return True
    return False


def parse(payload):
    """The command as a dict; ValueError (with the reason) for anything else."""
    def not_json(name):  # Python would read NaN and Infinity
        raise ValueError(f"{name} is not JSON")
    text = payload.decode("utf-8")  # invalid UTF-8 raises UnicodeDecodeError, a ValueError
    if too_deep(text):
        raise ValueError(f"objects and arrays nest deeper than {MAX_DEPTH} levels")
    doc = json.loads(text, parse_constant=not_json)
    if not isinstance(doc, dict):
        raise ValueError("the command is not a JSON object")
    return doc


def run_method(method, params):
    """This device's own commands: {"result": ...} or {"error": {"code": ..., "message": ...}}."""
    if method == "ping":
        return {"result": {"pong": True}}
    if method == "echo":
        return {"result": params}
    return {"error": {"code": "unknown_method", "message": "this device has no such method"}}


class Device:
    def __init__(self, args, host, port, tls):
        self.args, self.v5, self.base = args, args.mqtt_version == "5", f"{args.prefix}/{args.box}"
        self.host, self.port, self.stopping = host, port, False
        self.cache, self.cache_bytes = collections.OrderedDict(), 0  # "request/<id>" -> reply, oldest first
        # A stable client id (the box id by default) lets the broker find the
        # session, and the commands queued in it, when the device comes back.
        client_id, props = args.client_id or args.box, Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S  # MQTT 5: how long the broker keeps it while we are away
        self.client = c = mqtt.Client(client_id, protocol=mqtt.MQTTv5) if self.v5 else \
            mqtt.Client(client_id, clean_session=False, protocol=mqtt.MQTTv311)
        self.connect_args = {"clean_start": False, "properties": props} if self.v5 else {}
        if args.username:
            c.username_pw_set(args.username, args.password)
        if tls:  # verifies the broker's certificate and its name; no switch turns that off
            c.tls_set(ca_certs=args.ca_file or None)
        # The broker publishes this if the connection breaks without a DISCONNECT.
        c.will_set(self.base + "/status", "offline", qos=1, retain=True)
        c.max_queued_messages_set(1000)  # the outbox while disconnected is bounded
        c.on_connect, c.on_subscribe, c.on_message = self.on_connect, self.on_subscribe, self.on_message

    def on_connect(self, client, _userdata, flags, rc, _props=None):
        if rc != 0:
            logging.warning("broker refused the connection: %s", rc if self.v5 else mqtt.connack_string(rc))
            return
        logging.info("connected as %s (session present: %s)", self.args.box, bool(flags.get("session present")))
        client.subscribe([(self.base + "/request/+", 1), (self.base + "/message/+", 1)])

    def on_subscribe(self, client, _userdata, _mid, granted, _props=None):
        if any((g.value if self.v5 else g) >= 0x80 for g in granted):
            logging.error("subscriptions refused (%s): not announcing online", granted)
            client.disconnect()
        else:  # online only now: a caller seeing it may send a command at once
            client.publish(self.base + "/status", "online", qos=1, retain=True)

    def on_message(self, _client, _userdata, msg):
        kind, _, rid = msg.topic[len(self.base) + 1:].partition("/")
        props = getattr(msg, "properties", None) if self.v5 else None
        if not ID.fullmatch(rid) or kind not in ("request", "message"):
            return
        key = f"{kind}/{rid}"
        if msg.retain:  # a retained command would run again at every subscribe
            logging.warning("ignored retained %s", key)
        elif key in self.cache:  # QoS 1 redelivery or a retry: never run twice, answer again
            logging.info("%s seen again", key)
            if kind == "request":
                self.reply(rid, self.cache[key], props)
        elif kind == "message":
            logging.info("message %s: %d bytes", rid, len(msg.payload))
            self.remember(key, b"")
        elif getattr(props, "MessageExpiryInterval", None) == 0:
            logging.info("command %s expired before it arrived: not run", rid)  # its caller has given up
        else:
            try:
                doc = parse(msg.payload)
            except ValueError as e:
                answer = {"id": rid, "error": {"code": "bad_json", "message": str(e)}}
            else:
                try:
                    answer = {"id": rid, **run_method(doc.get("method"), doc.get("params"))}
                except Exception as e:  # a method that fails still answers: its caller is not left to time out
                    answer = {"id": rid, "error": {"code": "device_error", "message": str(e)}}
            payload = json.dumps(answer, separators=(",", ":")).encode()
            self.remember(key, payload)
            self.reply(rid, payload, props)

    def remember(self, key, payload):  # bounded: the oldest go first
        self.cache[key] = payload
        self.cache_bytes += len(payload)
        while len(self.cache) > 1 and (len(self.cache) > CACHE_IDS or self.cache_bytes > CACHE_BYTES):
            self.cache_bytes -= len(self.cache.popitem(last=False)[1])

    def reply(self, rid, payload, props):
        topic, out = f"{self.base}/response/{rid}", None
        if props is not None:
            # The Response Topic only when it is this box's own: the broker's ACL
            # refuses anything else, and a command must not steer our publishes.
            asked = getattr(props, "ResponseTopic", "")
            if asked.startswith(self.base + "/response/") and ID.fullmatch(asked[len(self.base) + 10:]):
                topic = asked
            out = Properties(PacketTypes.PUBLISH)
            if hasattr(props, "CorrelationData"):
                out.CorrelationData = props.CorrelationData
            trace = [v for k, v in getattr(props, "UserProperty", []) if k == "traceparent"]
            if trace:  # the bridge logs it: the caller's trace goes on through the reply
                out.UserProperty = ("traceparent", trace[0])
        self.client.publish(topic, payload, qos=1, properties=out)  # never retained

    def run(self):
        attempt = 0
        while not self.stopping:
            started = time.monotonic()
            try:
                self.client.connect(self.host, self.port, keepalive=30, **self.connect_args)
                while not self.stopping and self.client.loop(0.2) == mqtt.MQTT_ERR_SUCCESS:
                    pass
            except OSError as e:  # refused, unreachable, TLS
                logging.warning("cannot connect to %s:%d: %s", self.host, self.port, e)
            if self.stopping:
                break
            # A connection that lived retries at once; one that failed at once (refused, kicked
            # off by another client with our id) backs off: 25-50 ms, 50-100 ms, ... The jitter
            # spreads a fleet that lost the broker at one moment, instead of all knocking at once.
            attempt = 0 if time.monotonic() - started > 10 else min(attempt + 1, 30)
            delay = random.uniform(1, 2) * min(BACKOFF_MAX_S / 2, 0.025 * 2 ** (attempt - 1)) if attempt else 0
            logging.info("connection lost; retrying in %.2f s", delay)
            deadline = time.monotonic() + delay
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.02)
        self.stop()

    def stop(self):
        if self.client.is_connected():
            # Say `offline` ourselves: a clean DISCONNECT does not fire the will.
            info = self.client.publish(self.base + "/status", "offline", qos=1, retain=True)
            deadline = time.monotonic() + 2
            while not info.is_published() and time.monotonic() < deadline and self.client.loop(0.1) == 0:
                pass
            self.client.disconnect()
        logging.info("stopped")


def main():
    p = argparse.ArgumentParser(description="A boxgate device answering ping and echo.")
    p.add_argument("--box", required=True, help="this box's id (on the hardened broker also its user name)")
    p.add_argument("--uri", default="tcp://127.0.0.1:1883", help="tcp://, mqtt://, ssl:// or mqtts://host:port")
    p.add_argument("--prefix", default="dev", help="the topic prefix (default dev)")
    p.add_argument("--username", help="MQTT user name (the hardened broker: the box id)")
    p.add_argument("--password", default=os.environ.get("BOXGATE_MQTT_PASSWORD"), help="default: $BOXGATE_MQTT_PASSWORD")
    p.add_argument("--ca-file", help="CA of the broker's certificate (ssl://; default: the system's)")
    p.add_argument("--mqtt-version", choices=["5", "3", "3.1.1"], default="5", help="3 or 3.1.1: MQTT 3.1.1")
    p.add_argument("--client-id", help="default: the box id; keep it stable across restarts")
    args = p.parse_args()
    if not ID.fullmatch(args.box) or not args.prefix or any(c in args.prefix for c in "+#"):
        p.error("--box must match the id pattern and --prefix hold no + or #")
    uri = urllib.parse.urlsplit(args.uri)
    if uri.scheme not in ("tcp", "mqtt", "ssl", "mqtts") or not uri.hostname:
        p.error("--uri must be tcp://, mqtt://, ssl:// or mqtts://host[:port]")
    tls = uri.scheme in ("ssl", "mqtts")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    device = Device(args, uri.hostname, uri.port or (8883 if tls else 1883), tls)
    for sig in (signal.SIGTERM, signal.SIGINT):  # a clean stop: `offline`, then DISCONNECT
        signal.signal(sig, lambda *_: setattr(device, "stopping", True))
    device.run()


if __name__ == "__main__":
    main()
