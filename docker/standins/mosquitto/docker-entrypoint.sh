#!/bin/sh
# The official eclipse-mosquitto entrypoint: own /mosquitto when root, then run.
set -e
if [ "$(id -u)" = 0 ]; then
  chown -R mosquitto:mosquitto /mosquitto 2>/dev/null || true
fi
exec "$@"
