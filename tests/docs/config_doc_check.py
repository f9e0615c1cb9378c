#!/usr/bin/env python3
"""docs/operations.md's configuration reference against both daemons' --help.

    config_doc_check.py OPERATIONS_MD GATEWAY_BINARY BRIDGE_BINARY [SRC_DIR]

The reference is the table under "## Configuration reference": one row per
key, `| `key` | `BOXGATE_KEY` | gateway default | bridge default | meaning |`,
a default written as --help prints it (in backquotes; `""` when empty,
"secret" for a secret, "-" when that daemon has no such key). Fails on a key
--help lists that the table lacks, a row for a key a daemon no longer has, a
default that differs, or an env name that is not BOXGATE_<KEY>. With SRC_DIR,
also fails on a metric family registered in the sources ("boxgate_..." string
literals) that "## Metrics reference" does not name.
"""
import os
import re
import subprocess
import sys

HELP_LINE = re.compile(r"^  --([a-z0-9-]+)  \((default: (.*)|secret, not shown.*)\)$")


def help_keys(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SystemExit(f"{binary} --help exited {out.returncode}: {out.stderr}")
    keys = {}
    for line in out.stdout.splitlines():
        m = HELP_LINE.match(line)
        if m:
            keys[m.group(1).replace("-", "_")] = m.group(3) if m.group(3) is not None else "secret"
    if len(keys) < 10:
        raise SystemExit(f"{binary} --help: only {len(keys)} keys parsed; has its format changed?\n{out.stdout}")
    return keys


def doc_rows(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^## Configuration reference\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        raise SystemExit(f"{path}: no '## Configuration reference' section")
    rows = {}
    problems = []
    for line in m.group(1).splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) < 5:
            problems.append(f"row with {len(cells)} cells, not 5: {line}")
            continue
        key = cells[0].strip("`")
        if key in rows:
            problems.append(f"{key}: two rows")
        rows[key] = {"env": cells[1].strip("`"), "gateway": cells[2], "bridge": cells[3]}
    return rows, problems


def metric_failures(doc, src):
    text = open(doc, encoding="utf-8").read()
    m = re.search(r"^## Metrics reference\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        return [f"{doc}: no '## Metrics reference' section"]
    documented = set(re.findall(r"`(boxgate_[a-z_]+)`", m.group(1)))
    registered = set()
    for base, _, files in os.walk(src):
        for name in files:
            if name.endswith((".cpp", ".hpp")):
                with open(os.path.join(base, name), encoding="utf-8", errors="replace") as f:
                    registered |= set(re.findall(r'"(boxgate_[a-z_]+)"', f.read()))
    if not registered:
        return [f"no metric found under {src}"]
    return [f"metric {name} is registered in the sources but not in the metrics reference"
            for name in sorted(registered - documented)]


def unquote(cell):
    if cell in ("-", "secret"):
        return cell
    if len(cell) >= 2 and cell.startswith("`") and cell.endswith("`"):
        return cell[1:-1]
    return None  # a default must be in backquotes


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    doc, gateway, bridge = sys.argv[1:4]
    rows, failures = doc_rows(doc)
    if len(sys.argv) == 5:
        failures += metric_failures(doc, sys.argv[4])
    daemons = {"gateway": help_keys(gateway), "bridge": help_keys(bridge)}
    for daemon, keys in daemons.items():
        for key, default in keys.items():
            row = rows.get(key)
            if row is None:
                failures.append(f"{key} ({daemon} --help) is not in the configuration reference")
                continue
            documented = unquote(row[daemon])
            if documented is None:
                failures.append(f"{key}: {daemon} default {row[daemon]!r} is not in backquotes")
            elif documented != default:
                failures.append(f"{key}: the reference says {daemon} default {row[daemon]}, --help says {default}")
    for key, row in rows.items():
        if row["env"] != "BOXGATE_" + key.upper():
            failures.append(f"{key}: env name {row['env']} is not BOXGATE_{key.upper()}")
        for daemon, keys in daemons.items():
            if row[daemon] != "-" and key not in keys:
                failures.append(f"{key}: the reference gives a {daemon} default, but {daemon} --help has no such key")
        if row["gateway"] == "-" and row["bridge"] == "-":
            failures.append(f"{key}: neither daemon has it; drop the row")
    print(f"config_doc_check: {len(rows)} rows; gateway {len(daemons['gateway'])} keys, "
          f"bridge {len(daemons['bridge'])} keys")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
