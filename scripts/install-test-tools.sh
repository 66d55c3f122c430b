#!/usr/bin/env bash
# Installs the ISO 9660 readers the tests of packages/iso9660 use as oracles: 7-Zip
# (`7zz`, or `7z`), bsdtar and xorriso. Idempotent: when all three are on PATH it does
# nothing. Otherwise, as root, it runs `apt-get update` once and installs Debian's
# packages; as anyone else it prints what to install and exits non-zero.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing() {
  local out=()
  have 7zz || have 7z || out+=(7zip)
  have bsdtar || out+=(libarchive-tools)
  have xorriso || out+=(xorriso)
  echo "${out[@]:-}"
}

packages="$(missing)"
if [[ -z "$packages" ]]; then
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "install-test-tools: missing ISO readers; install them as root with:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends $packages" >&2
  exit 1
fi

echo "install-test-tools: installing $packages …" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends 7zip libarchive-tools xorriso

packages="$(missing)"
if [[ -n "$packages" ]]; then
  echo "install-test-tools: still missing after apt-get install: $packages" >&2
  exit 1
fi
