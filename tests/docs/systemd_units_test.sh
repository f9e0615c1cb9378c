#!/usr/bin/env bash
# config/systemd/*.service: `systemd-analyze verify` accepts each unit (no
# error, no warning), with its ExecStart pointed at the binary of BUILD_DIR
# (verify needs the path to exist), and each keeps its restart policy,
# hardening and a stop timeout above its daemon's drain_timeout_ms.
#   systemd_units_test.sh BUILD_DIR
# Exit 0 passed, 1 failed, 77 skipped (no systemd-analyze).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "$1" && pwd)

if ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
  exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() { echo "FAIL: $*"; failed=1; }

for daemon in gateway bridge; do
  unit=boxgate-$daemon.service
  src=$root/config/systemd/$unit
  binary=$build/src/$daemon/boxgate-$daemon
  [[ -f "$src" ]] || { fail "$src is missing"; continue; }
  [[ -x "$binary" ]] || { fail "$binary is not built"; continue; }
  grep -q "^ExecStart=/usr/local/bin/boxgate-$daemon " "$src" || fail "$unit: ExecStart is not /usr/local/bin/boxgate-$daemon"
  sed "s|^ExecStart=/usr/local/bin/boxgate-$daemon |ExecStart=$binary |" "$src" >"$tmp/$unit"
  if ! out=$(cd "$tmp" && systemd-analyze verify "$unit" 2>&1); then
    fail "$unit: systemd-analyze verify failed: $out"
  elif [[ -n "$out" ]]; then
    fail "$unit: systemd-analyze verify warns: $out"
  fi
  for want in Restart=on-failure NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes \
              CapabilityBoundingSet= ProtectHome=yes RestrictAddressFamilies= SystemCallFilter=; do
    grep -q "^$want" "$src" || fail "$unit: no $want"
  done
  grep -qE '^(DynamicUser=yes|User=)' "$src" || fail "$unit: runs as root (no DynamicUser=yes or User=)"
  # The drain must fit in the stop timeout, or systemd SIGKILLs mid-drain.
  drain_ms=$("$binary" --help | sed -n 's/^  --drain-timeout-ms  (default: \([0-9]*\)).*/\1/p')
  stop_s=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$src")
  if [[ -z "$drain_ms" || -z "$stop_s" ]]; then
    fail "$unit: cannot read drain_timeout_ms ('$drain_ms') or TimeoutStopSec ('$stop_s')"
  elif (( stop_s * 1000 <= drain_ms )); then
    fail "$unit: TimeoutStopSec=$stop_s is not above drain_timeout_ms=$drain_ms"
  fi
  [[ $failed -eq 0 ]] && echo "ok: $unit (drain ${drain_ms} ms, stop timeout ${stop_s} s)"
done
exit "$failed"
