#!/usr/bin/env bash
# Installs, from the OS packages, the commands named as arguments that are missing
# (wrk drives the HTTP benchmarks; kubectl renders the kustomize overlays the deploy tests validate).
set -euo pipefail
missing=()
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing: ${missing[*]}. Install them (e.g. 'sudo apt-get install -y ${missing[*]}') and run again." >&2
  exit 1
fi
echo "[os-tools] installing ${missing[*]} from the OS packages"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
