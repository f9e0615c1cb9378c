#!/usr/bin/env python3
"""The gateway's route table against the docs that list its endpoints.

    routes_doc_check.py SOURCE_DIR

Reads the rows of kRoutes in src/gateway/routes.cpp,
`{METHOD, "/path", "log name" or nullptr, api|ops, handler},`, and fails on:
  - a route that docs/contract.md does not name as `METHOD /path`, or that
    docs/openapi.yaml lacks under `paths:` (path and method);
  - a `METHOD /path` that README.md, docs/operations.md or docs/contract.md
    names, or a path and method of docs/openapi.yaml, that no row serves (a
    {name} template must equal a row's path; a concrete path such as
    /v1/devices/box-1/state must match one);
  - access-log endpoint names in docs/operations.md's "Access log" bullet that
    differ from the table's.
"""
import os
import re
import sys

ROW = re.compile(r'^\s*\{(GET|POST|DELETE), +"(/[^"]*)", +(?:"([a-z_]+)"|nullptr), +(api|ops), +(\w+)\},\s*$')
MENTION = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE|HEAD) +(/[A-Za-z0-9_.{}/%-]*)")


def section(path, pattern, what):
    """The first group of `pattern` (multi-line) in the file at `path`; exits naming `what` when absent."""
    m = re.search(pattern, open(path, encoding="utf-8").read(), re.S | re.M)
    if not m:
        raise SystemExit(f"{path}: no {what}")
    return m.group(1)


def table_rows(routes_cpp):
    table = section(routes_cpp, r"^constexpr Route kRoutes\[\] = \{\n(.*?)^\};", "'constexpr Route kRoutes[] = {' table")
    rows, problems = [], []
    for line in table.splitlines():
        if not line.strip() or line.strip().startswith("//"):
            continue
        r = ROW.match(line)
        if not r:
            problems.append(f"{routes_cpp}: a row this check cannot read (one row per line, "
                            f'{{METHOD, "/path", "name" or nullptr, api|ops, handler}}): {line.strip()}')
            continue
        rows.append({"method": r.group(1), "path": r.group(2), "log": r.group(3)})
    if len(rows) < 5:
        problems.append(f"{routes_cpp}: only {len(rows)} rows read from kRoutes; has its format changed?")
    return rows, problems


def matches(pattern, path):
    want, got = pattern.split("/"), path.split("/")
    return len(want) == len(got) and all(bool(g) if w.startswith("{") else w == g for w, g in zip(want, got))


def openapi_paths(openapi):
    """{path: {methods}} under `paths:`."""
    paths, current = {}, None
    for line in section(openapi, r"^paths:\n(.*?)(?=^\S|\Z)", "'paths:' section").splitlines():
        p = re.match(r"^  (/\S*):\s*$", line)
        if p:
            current = paths.setdefault(p.group(1), set())
            continue
        op = re.match(r"^    (get|post|put|patch|delete|head):", line)
        if op and current is not None:
            current.add(op.group(1).upper())
    return paths


def mentions(path):
    """(METHOD, /path, line number) for every `METHOD /path` in a doc."""
    found = []
    for number, line in enumerate(open(path, encoding="utf-8"), 1):
        for m in MENTION.finditer(line):
            found.append((m.group(1), m.group(2).rstrip("."), number))
    return found


def access_log_names(operations):
    bullet = section(operations, r"^- \*\*Access log\*\*(.*?)(?=^- \*\*|^#|\Z)", "'- **Access log**' bullet")
    e = re.search(r"`endpoint` \((.*?)\),", bullet, re.S)
    if not e:
        raise SystemExit(f"{operations}: the Access log bullet names no `endpoint` (...) values")
    # The list's words in backquotes, less a remark on one ("whose `box_id` is `-`").
    names = re.sub(r"whose `[a-z_]+` is `[^`]*`", "", e.group(1))
    return set(re.findall(r"`([a-z_]+)`", names))


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    os.chdir(sys.argv[1])  # messages then name files as the repository does
    routes_cpp, contract, openapi = "src/gateway/routes.cpp", "docs/contract.md", "docs/openapi.yaml"
    operations, readme = "docs/operations.md", "README.md"

    rows, problems = table_rows(routes_cpp)

    contract_mentions = {(m, p) for m, p, _ in mentions(contract)}
    documented = openapi_paths(openapi)
    for row in rows:
        route = f"{row['method']} {row['path']}"
        if (row["method"], row["path"]) not in contract_mentions:
            problems.append(f"{route}: in the route table, not named in {contract}")
        if row["method"] not in documented.get(row["path"], set()):
            problems.append(f"{route}: in the route table, not under paths: in {openapi}")

    def served(method, path):
        return any(r["method"] == method and (r["path"] == path or ("{" not in path and matches(r["path"], path)))
                   for r in rows)

    for doc in (readme, operations, contract):
        for method, path, number in mentions(doc):
            if not served(method, path):
                problems.append(f"{doc}:{number}: {method} {path} is not in the route table ({routes_cpp})")
    for path, methods in sorted(documented.items()):
        for method in sorted(methods):
            if not served(method, path):
                problems.append(f"{openapi}: {method} {path} is not in the route table ({routes_cpp})")

    logged = {r["log"] for r in rows if r["log"]}
    documented_names = access_log_names(operations)
    for name in sorted(logged - documented_names):
        problems.append(f"access-log endpoint {name}: in the route table, not in {operations}'s Access log bullet")
    for name in sorted(documented_names - logged):
        problems.append(f"access-log endpoint {name}: in {operations}'s Access log bullet, not in the route table")

    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print(f"{len(rows)} routes match README.md, docs/contract.md, docs/openapi.yaml and docs/operations.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
