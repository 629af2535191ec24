#!/usr/bin/env bash
# Install code-server 4.100.3 (VS Code 1.100.3) from the npm registry into one folder, for the
# editor test (tests/test_vscode.py). Newer code-server needs node >= 22; Debian 12 has node 20.
# Idempotent: a folder that already holds a working install is left alone.
#
# Usage: install-code-server.sh DIR
# Needs: node, npm, and Debian's ripgrep, build-essential, pkg-config, libkrb5-dev,
# libxkbfile-dev, libsecret-1-dev (native modules are rebuilt against the system node).
set -euo pipefail
dir="${1:?usage: install-code-server.sh DIR}"
version=4.100.3
marker="$dir/.installed-$version"
if [ -f "$marker" ]; then
  exit 0
fi
mkdir -p "$dir"
cd "$dir"
export npm_config_yes=true npm_config_nodedir=/usr
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false
[ -f package.json ] || echo '{"name": "hintwise-code-server", "private": true}' > package.json
# The package's install script downloads things; do its steps by hand instead.
npm install --ignore-scripts --no-save "code-server@$version"
npm rebuild argon2
vscode="$dir/node_modules/code-server/lib/vscode"
(cd "$vscode" && npm install --omit=dev --ignore-scripts)
# @vscode/ripgrep's postinstall downloads a binary: use Debian's.
mkdir -p "$vscode/node_modules/@vscode/ripgrep/bin"
cp "$(command -v rg)" "$vscode/node_modules/@vscode/ripgrep/bin/rg"
(cd "$vscode" && npm rebuild)
(cd "$vscode/extensions" && npm install --omit=dev)
touch "$marker"
echo "code-server $version installed in $dir"
