#!/usr/bin/env python3
"""docs/openapi.yaml against what the integration tests really saw.

    openapi_check.py SPEC HTTP_LOG [TEST_BINARY]

HTTP_LOG is the file the tests' HTTP helpers append to when BOXGATE_HTTP_LOG
names it (tests/support/http.hpp, record_http): one line per call,
"<test>\\t<method>\\t<path>\\t<status>\\t<error code>", and "#ran\\t<test>" per
test started. Checks:

1. Every status seen on a documented path is documented for that operation,
   with the error code seen among the codes documented for that status (an
   error body's code; libevent's own HTML answers carry none).
2. When every test of TEST_BINARY ran (a whole ctest run, not ctest -R),
   every error code documented is produced by some test, but for the
   EXCEPTIONS below, each with its reason.

Exit 0 passed, 1 failed. python3-yaml (Debian) parses the YAML.
"""
import re
import subprocess
import sys

try:
    import yaml
except ImportError:
    print("openapi_check: needs python3-yaml (scripts/deps installs it)", file=sys.stderr)
    sys.exit(1)

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}

# Documented error codes no test produces, and why. Keep it short: each one
# is a part of the contract the tests do not reach.
EXCEPTIONS = {}

# Answers seen that are not an operation of the document, and why they are right.
# (METHOD, template, status, code) -> reason. None today: another method than
# a path takes (405 method_not_allowed) is allowed by the check itself.
ALLOWED_UNDOCUMENTED = {}


def resolve(spec, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        seen += 1
        if seen > 20:
            raise ValueError("$ref loop")
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def error_codes(spec, schema, depth=0):
    """The codes a response schema allows in "error" (enums under allOf/oneOf/anyOf)."""
    if depth > 20 or not isinstance(schema, dict):
        return set()
    schema = resolve(spec, schema)
    codes = set()
    error = schema.get("properties", {}).get("error")
    if isinstance(error, dict) and "enum" in error:
        codes |= set(error["enum"])
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            codes |= error_codes(spec, part, depth + 1)
    return codes


def load_spec(path):
    with open(path) as f:
        spec = yaml.safe_load(f)
    if not str(spec.get("openapi", "")).startswith("3.0"):
        raise ValueError(f"{path}: not OpenAPI 3.0")
    ops = {}  # (METHOD, template) -> {status: set(codes)}
    for template, item in spec["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            statuses = {}
            for status, response in op["responses"].items():
                response = resolve(spec, response)
                codes = set()
                for media in response.get("content", {}).values():
                    codes |= error_codes(spec, media.get("schema", {}))
                statuses[int(status)] = codes
            ops[(method.upper(), template)] = statuses
    return ops


def template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    spec_path, log_path = sys.argv[1], sys.argv[2]
    ops = load_spec(spec_path)
    templates = sorted({t for _, t in ops}, key=len, reverse=True)
    regexes = [(t, template_regex(t)) for t in templates]

    failures = []
    ran = set()
    seen_codes = {}  # code -> an example "METHOD path status (test)"
    calls = unmatched = 0
    allowed_used = set()
    try:
        lines = open(log_path, encoding="utf-8", errors="replace").read().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        fields = line.split("\t")
        if fields[0] == "#ran" and len(fields) == 2:
            ran.add(fields[1])
            continue
        if len(fields) != 5:
            failures.append(f"malformed log line: {line!r}")
            continue
        test, method, path, status, code = fields
        status = int(status)
        if status < 0:
            continue  # no answer (the test's own transport error or timeout)
        calls += 1
        template = next((t for t, rx in regexes if rx.match(path)), None)
        if template is None:
            unmatched += 1
            continue
        where = f"{method} {path} -> {status} {code or '(no code)'} in {test}"
        if code:
            seen_codes.setdefault(code, where)
        statuses = ops.get((method, template))
        if statuses is None:
            if status == 405 and code == "method_not_allowed":
                continue  # another method than the path takes: documented on the path's operations
            if (method, template, status, code) in ALLOWED_UNDOCUMENTED:
                allowed_used.add((method, template, status, code))
                continue
            failures.append(f"undocumented operation {method} {template}: {where}")
            continue
        if status not in statuses:
            if (method, template, status, code) in ALLOWED_UNDOCUMENTED:
                allowed_used.add((method, template, status, code))
                continue
            failures.append(f"status {status} not documented for {method} {template}: {where}")
        elif code and statuses[status] and code not in statuses[status]:
            failures.append(f"error code {code} not documented for {method} {template} {status}: {where}")
        elif code and not statuses[status] and status >= 400:
            failures.append(f"{method} {template} {status} documents no error code, saw {code}: {where}")

    documented = set()
    for statuses in ops.values():
        for codes in statuses.values():
            documented |= codes
    print(f"openapi_check: {calls} answers from {len(ran)} tests, {unmatched} on undocumented paths; "
          f"{len(documented)} error codes documented, {len(seen_codes)} seen")
    for code in sorted(set(EXCEPTIONS) - documented):
        failures.append(f"exception for {code}, which is not documented: drop it from EXCEPTIONS")

    all_tests = None
    if len(sys.argv) == 4:
        out = subprocess.run([sys.argv[3], "--gtest_list_tests"], capture_output=True, text=True, check=True).stdout
        all_tests, suite = set(), ""
        for raw in out.splitlines():
            name = raw.split("#")[0].rstrip()
            if not name:
                continue
            if not raw.startswith(" "):
                suite = name
            elif not name.strip().startswith("DISABLED_") and not suite.startswith("DISABLED_"):
                all_tests.add(suite + name.strip())
    if all_tests is not None and all_tests <= ran:
        for code in sorted(documented - set(seen_codes)):
            if code in EXCEPTIONS:
                print(f"  not produced, allowed: {code}: {EXCEPTIONS[code]}")
            else:
                failures.append(f"documented error code {code} is produced by no test")
        for code in sorted(set(EXCEPTIONS) & set(seen_codes)):
            print(f"  note: {code} is produced now ({seen_codes[code]}): drop its exception")
        for entry in sorted(set(ALLOWED_UNDOCUMENTED) - allowed_used):
            print(f"  note: no test saw {entry} any more: drop it from ALLOWED_UNDOCUMENTED")
    elif all_tests is not None:
        print(f"openapi_check: {len(ran & all_tests)} of {len(all_tests)} tests ran: "
              "the check that every documented code is produced needs a whole run; skipped")

    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
