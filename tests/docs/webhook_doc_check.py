#!/usr/bin/env python3
"""docs/webhooks.md and docs/schemas/ held to what they claim.

    webhook_doc_check.py DOC SCHEMA_DIR [DELIVERY ...]

Always: both schemas are valid draft 2020-12 schemas, and every body the
doc shows as an example (a fenced block after `<!-- example: webhook -->`)
validates against webhook.schema.json. The doc's verification snippets
(the fenced blocks after `<!-- verify: python -->` and `<!-- verify: node -->`)
must be there.

Each DELIVERY is a real one a gateway sent (tests/integration/webhook_docs_itest.cpp
captures them): DELIVERY.json holds {"secret": "whsec_...", "headers": {...}}
with lowercase header names, DELIVERY.body the body's exact bytes. For each,
the body validates against the schema (and a command's type names its
state), and both snippets, run with python3 and node, say
  valid    for the delivery as sent,
  invalid  with one body byte changed,
  invalid  re-signed (here, with Python's hmac) with a timestamp 10 minutes old,
  valid    re-signed with the current time (the re-signing itself is right).

Needs python3-jsonschema (scripts/deps) for the schema checks and node for
the Node snippet. Prints one line per check; exits 1 when any failed.
"""

import base64
import hashlib
import hmac
import json
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import warnings

import jsonschema

PY_DRIVER = """
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
print("valid" if verify(d["secret"], d["headers"], open(sys.argv[2], "rb").read()) else "invalid")
"""

NODE_DRIVER = """
const fs = require("node:fs");
const d = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
console.log(verify(d.secret, d.headers, fs.readFileSync(process.argv[3])) ? "valid" : "invalid");
"""

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def marked_blocks(doc, marker):
    """The fenced blocks that follow `<!-- {marker} -->` lines."""
    pattern = re.compile(r"<!-- " + re.escape(marker) + r" -->\n```[a-z]*\n(.*?)\n```", re.S)
    return pattern.findall(doc)


def validator(schema_dir, name):
    path = pathlib.Path(schema_dir, name).resolve()
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    with warnings.catch_warnings():  # RefResolver: deprecated in newer jsonschema, the only way in Debian 12's
        warnings.simplefilter("ignore", DeprecationWarning)
        resolver = jsonschema.RefResolver(base_uri=path.as_uri(), referrer=schema)
    return jsonschema.Draft202012Validator(schema, resolver=resolver)


def schema_errors(v, document):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(document)]


def sign(secret, msg_id, ts, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def run_snippets(snippets, secret, headers, body, tmp):
    """{'python': 'valid'|'invalid'|error, 'node': ...} for one delivery."""
    d = pathlib.Path(tmp)
    (d / "delivery.json").write_text(json.dumps({"secret": secret, "headers": headers}))
    (d / "body").write_bytes(body)
    out = {}
    for lang, program, ext, driver in (("python", sys.executable, "py", PY_DRIVER),
                                       ("node", "node", "js", NODE_DRIVER)):
        script = d / f"verify.{ext}"
        script.write_text(snippets[lang] + "\n" + driver)
        r = subprocess.run([program, str(script), str(d / "delivery.json"), str(d / "body")],
                           capture_output=True, text=True, timeout=30)
        out[lang] = r.stdout.strip() if r.returncode == 0 else f"exit {r.returncode}: {r.stderr.strip()[-300:]}"
    return out


def check_delivery(base, snippets, webhook, tmp):
    meta = json.loads(pathlib.Path(base + ".json").read_text())
    secret, headers = meta["secret"], meta["headers"]
    body = pathlib.Path(base + ".body").read_bytes()
    name = pathlib.Path(base).name
    document = json.loads(body)
    errors = schema_errors(webhook, document)
    check(not errors, f"{name}: body ({document.get('type')}) against webhook.schema.json {errors}")
    if document.get("type", "").startswith("command."):
        check(document["type"] == "command." + document["data"].get("state", ""),
              f"{name}: type {document['type']} names data.state")
    check(headers.get("webhook-id") == f"{document.get('stream')}-{document.get('stream_id')}",
          f"{name}: webhook-id is <stream>-<stream id>")

    tampered = bytearray(body)
    tampered[len(tampered) // 2] ^= 0x01
    now = int(time.time())
    old = dict(headers, **{"webhook-timestamp": str(now - 600)})
    old["webhook-signature"] = sign(secret, headers["webhook-id"], now - 600, body)
    fresh = dict(headers, **{"webhook-timestamp": str(now)})
    fresh["webhook-signature"] = sign(secret, headers["webhook-id"], now, body)
    cases = (("as sent", headers, body, "valid"),
             ("one body byte changed", headers, bytes(tampered), "invalid"),
             ("timestamp 10 minutes old", old, body, "invalid"),
             ("re-signed now", fresh, body, "valid"))
    for label, h, b, want in cases:
        got = run_snippets(snippets, secret, h, b, tmp)
        for lang, answer in got.items():
            check(answer == want, f"{name}: {lang} snippet, {label}: {answer} (want {want})")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    doc = pathlib.Path(sys.argv[1]).read_text()
    schema_dir = sys.argv[2]
    webhook = validator(schema_dir, "webhook.schema.json")
    validator(schema_dir, "outcome.schema.json")
    check(True, "webhook.schema.json and outcome.schema.json are draft 2020-12 schemas")

    examples = marked_blocks(doc, "example: webhook")
    check(len(examples) >= 3, f"{len(examples)} example bodies marked in the doc")
    for text in examples:
        document = json.loads(text)
        errors = schema_errors(webhook, document)
        check(not errors, f"doc example {document.get('type')} against webhook.schema.json {errors}")

    snippets = {}
    for lang in ("python", "node"):
        blocks = marked_blocks(doc, f"verify: {lang}")
        check(len(blocks) == 1, f"one {lang} verification snippet in the doc ({len(blocks)})")
        if blocks:
            snippets[lang] = blocks[0]
            lines = [line for line in blocks[0].splitlines() if line.strip()]
            check(len(lines) <= 14, f"the {lang} snippet is short ({len(lines)} lines)")

    if len(snippets) == 2:
        with tempfile.TemporaryDirectory() as tmp:
            for base in sys.argv[3:]:
                check_delivery(base, snippets, webhook, tmp)

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
