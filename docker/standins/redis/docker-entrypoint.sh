#!/bin/sh
# The official redis image's entrypoint rules: options alone mean redis-server;
# run as user redis; without a config file that sets protected-mode, add
# `--protected-mode no` (otherwise Redis refuses every client not on loopback,
# i.e. every other container).
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' + || true
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$1" = redis-server ]; then
  protected=1
  config=
  if [ -f "${2:-}" ]; then
    config=$2
    if grep -q '^protected-mode' "$config"; then protected=; fi
  fi
  if [ -n "$protected" ]; then
    shift
    if [ -n "$config" ]; then shift; fi
    set -- --protected-mode no "$@"
    if [ -n "$config" ]; then set -- "$config" "$@"; fi
    set -- redis-server "$@"
  fi
fi
exec "$@"
