#!/usr/bin/env python3
"""Checks config/grafana/ without a Grafana (Debian has no package of it).

    check_grafana.py GATEWAY_METRICS BRIDGE_METRICS [--rules-out FILE]

- the provisioning files parse and agree with docker-compose.yml (data source
  uid and URL, dashboard folder mounted where the provider reads);
- the dashboard JSON parses, every panel uses the provisioned data source and
  every query names only metrics (and labels) the daemons really export, read
  from their /metrics output (files given);
- the dashboard shows what an operator needs at a glance: command rate by outcome, latency
  p50/p99 from the histogram, pending, reconnects, bridge drops, unclaimed
  replies, dependency up/down;
- with --rules-out, writes every query as a Prometheus recording rule, so
  `promtool check rules FILE` parses each one as Prometheus would.
Needs PyYAML (Debian's python3-yaml, which docker-compose depends on).
"""

import argparse
import json
import os
import re
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s')
# Labels Prometheus adds to every scraped series, and the histogram's `le`.
TARGET_LABELS = {"instance", "job", "le"}
# Series Prometheus makes itself for every target.
SYNTHETIC = {"up": set()}
REQUIRED = {
    "command rate by outcome": r"rate\(boxgate_commands_total\b.*by \(outcome\)|by \(outcome\).*boxgate_commands_total",
    "latency p50": r"histogram_quantile\(0\.5\d*, .*boxgate_command_duration_seconds_bucket",
    "latency p99": r"histogram_quantile\(0\.99, .*boxgate_command_duration_seconds_bucket",
    "pending": r"boxgate_commands_pending",
    "reconnects": r"boxgate_reconnects_total",
    "bridge drops": r"boxgate_replies_dropped_total",
    "unclaimed replies": r"boxgate_replies_unclaimed_total",
    "dependency up/down": r"boxgate_dependency_up",
}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "rate", "irate", "increase", "histogram_quantile",
    "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "topk", "bottomk",
    "delta", "deriv", "abs", "clamp_min", "clamp_max", "sort", "sort_desc", "time", "vector", "scalar",
}

errors = []


def fail(msg):
    errors.append(msg)
    print(f"    check_grafana: FAIL: {msg}")


def exported(paths):
    """metric name -> label names, from Prometheus text files."""
    names = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                m = SAMPLE.match(line)
                if not m:
                    continue
                labels = {kv.split("=", 1)[0].strip() for kv in re.findall(r'(\w+)="', m.group(2) or "")}
                names.setdefault(m.group(1), set()).update(labels)
    return names


def check_query(expr, names, where):
    # Drop strings (label values), then look at identifiers.
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    used = set()
    for m in re.finditer(r'\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\{[^}]*\})?', bare):
        ident, matchers = m.group(1), m.group(2) or ""
        if ident in PROMQL_WORDS or ident.startswith("__") or re.fullmatch(r"\d+\w*", ident):
            continue
        # a grouping label list: `by (a, b)` - checked below
        before = bare[:m.start()].rstrip()
        if re.search(r"\b(by|without|on|ignoring)\s*\([^)]*$", before):
            continue
        if ident in names or ident in SYNTHETIC:
            used.add(ident)
            labels = names.get(ident, set()) | TARGET_LABELS
            for label in re.findall(r'(\w+)\s*[=!~]', matchers):
                if label not in labels:
                    fail(f"{where}: {ident} has no label {label!r}: {expr}")
        elif re.fullmatch(r"[0-9.]+", ident) is None:
            fail(f"{where}: {ident!r} is not a metric the daemons export: {expr}")
    if not used:
        fail(f"{where}: names no metric: {expr}")
    have = set().union(*(names.get(u, set()) for u in used)) | TARGET_LABELS
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", bare):
        for label in filter(None, (g.strip() for g in group.split(","))):
            if label not in have:
                fail(f"{where}: groups by {label!r}, a label none of {sorted(used)} has: {expr}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", nargs="+", help="/metrics output of the gateway and the bridge")
    p.add_argument("--rules-out", help="write the queries as a rules file for promtool check rules")
    args = p.parse_args()
    names = exported(args.metrics)
    if not any(n.startswith("boxgate_") for n in names):
        sys.exit("check_grafana: no boxgate_ metric in the given /metrics files")

    compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
    grafana = compose["services"]["grafana"]
    prometheus = compose["services"]["prometheus"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana.get("volumes", [])}
    prov_dir = mounts.get("./config/grafana/provisioning")
    dash_dir = mounts.get("./config/grafana/dashboards")
    if prov_dir != "/etc/grafana/provisioning":
        fail(f"docker-compose.yml mounts config/grafana/provisioning at {prov_dir}, not /etc/grafana/provisioning")
    if "observability" not in grafana.get("profiles", []) or "observability" not in prometheus.get("profiles", []):
        fail("grafana and prometheus are not both in the observability profile")

    base = os.path.join(ROOT, "config", "grafana")
    ds = yaml.safe_load(open(os.path.join(base, "provisioning", "datasources", "prometheus.yml")))
    sources = ds.get("datasources", [])
    uids = {s.get("uid") for s in sources if s.get("type") == "prometheus"}
    if ds.get("apiVersion") != 1 or len(uids) != 1:
        fail("provisioning/datasources/prometheus.yml: apiVersion 1 and one prometheus data source with a uid")
    for s in sources:
        if s.get("url") != "http://prometheus:9090":
            fail(f"data source url {s.get('url')} is not the compose service prometheus:9090")
    providers = yaml.safe_load(open(os.path.join(base, "provisioning", "dashboards", "boxgate.yml")))
    paths = [pr.get("options", {}).get("path") for pr in providers.get("providers", [])]
    if providers.get("apiVersion") != 1 or paths != [dash_dir]:
        fail(f"provisioning/dashboards/boxgate.yml reads {paths}; docker-compose.yml mounts the dashboards at {dash_dir}")

    rules = []
    dashboards = sorted(f for f in os.listdir(os.path.join(base, "dashboards")) if f.endswith(".json"))
    if not dashboards:
        fail("no dashboard in config/grafana/dashboards")
    for file in dashboards:
        dash = json.load(open(os.path.join(base, "dashboards", file)))
        for key in ("uid", "title", "panels", "schemaVersion"):
            if key not in dash:
                fail(f"{file}: no {key!r}")
        exprs = []
        ids = set()
        for panel in dash.get("panels", []):
            if panel.get("id") in ids:
                fail(f"{file}: panel id {panel.get('id')} twice")
            ids.add(panel.get("id"))
            if panel.get("type") == "row":
                continue
            where = f"{file}: panel {panel.get('title')!r}"
            for obj in [panel] + panel.get("targets", []):
                if obj.get("datasource", {}).get("uid") not in uids:
                    fail(f"{where}: data source {obj.get('datasource')} is not the provisioned one {uids}")
            if not panel.get("targets"):
                fail(f"{where}: no query")
            for target in panel.get("targets", []):
                expr = target.get("expr", "")
                exprs.append(expr)
                check_query(expr, names, where)
                rules.append(expr.replace("$__rate_interval", "1m"))
        joined = "\n".join(exprs)
        for what, pattern in REQUIRED.items():
            if not any(re.search(pattern, e) for e in exprs) and not re.search(pattern, joined):
                fail(f"{file}: nothing shows {what}")
        print(f"    check_grafana: {file}: {len(exprs)} queries in {len(ids)} panels checked against "
              f"{sum(1 for n in names if n.startswith('boxgate_'))} exported series names")

    if args.rules_out:
        doc = {"groups": [{"name": "grafana-dashboard-queries",
                           "rules": [{"record": f"boxgate:dashboard_query_{i}", "expr": e}
                                     for i, e in enumerate(rules)]}]}
        with open(args.rules_out, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    if errors:
        sys.exit(f"check_grafana: {len(errors)} problems")
    print("    check_grafana: provisioning and dashboards OK")


if __name__ == "__main__":
    main()
