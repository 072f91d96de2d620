#!/usr/bin/env bash
# Load generators the benchmarks drive from a separate process: wrk (HTTP) from the OS packages.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "wrk is not installed. Install it (e.g. 'sudo apt-get install -y wrk') and run again." >&2
  exit 1
fi
echo "[bench-tools] installing wrk from the OS packages"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
