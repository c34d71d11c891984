#!/usr/bin/env bash
# Install everything the VS Code client's build and its end-to-end test need, on a
# fresh Debian 12 machine (run as root, or with sudo available for apt-get).
#
#   - Debian packages: chromium (the browser Playwright drives), ripgrep, and the
#     headers code-server's native modules build against;
#   - Node.js 20 or newer, when `node` is missing or older (Debian 12 ships 18): Debian's
#     nodejs and npm, then `npm install -g node@20 npm@10` (the npm registry's `node`
#     package brings a prebuilt Node 20, headers included), first on PATH from then on;
#   - node-gyp pointed at the headers of the Node that runs (npm_config_nodedir), so that
#     native modules (code-server's argon2) build without downloading them;
#   - vscode-client/node_modules (npm ci);
#   - code-server from the npm registry, into a tools folder outside the repository
#     (ERRAND_TOOLS_DIR, default ~/.cache/errand/tools), so that it survives clones.
#
# Idempotent: each step is skipped when its result is already there.
# Prints the path of the code-server binary on its last line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CODE_SERVER_VERSION=${CODE_SERVER_VERSION:-4.100.3}
TOOLS_DIR=${ERRAND_TOOLS_DIR:-$HOME/.cache/errand/tools}
CODE_SERVER_PREFIX="$TOOLS_DIR/code-server-$CODE_SERVER_VERSION"
CODE_SERVER_BIN="$CODE_SERVER_PREFIX/node_modules/.bin/code-server"
APT_PACKAGES=(chromium ripgrep libkrb5-dev libsecret-1-dev libx11-dev libxkbfile-dev
  pkg-config build-essential python3 git)

log() { printf '[setup-vscode] %s\n' "$*" >&2; }

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# --- Debian packages -----------------------------------------------------------------
need_node=0
if ! command -v node >/dev/null || [ "$(node_major)" -lt 20 ]; then
  need_node=1
  # Debian's Node (18 on Debian 12) only to run npm once: it installs Node 20 below.
  command -v node >/dev/null || APT_PACKAGES+=(nodejs)
  command -v npm >/dev/null || APT_PACKAGES+=(npm)
fi
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- Node.js 20 ------------------------------------------------------------------------
if [ "$need_node" -eq 1 ]; then
  log "installing Node.js 20 from the npm registry (npm install -g node@20 npm@10; found $(node --version 2>/dev/null || echo none))"
  sudo_if_needed npm install -g --no-audit --no-fund node@20 npm@10 >&2
fi
# The global bin folder (/usr/local/bin for Debian's npm) goes first, so that the Node
# and npm just installed are the ones used from here on, also by whoever runs this
# script's output (scripts/test-vscode.sh does the same).
PATH="$(npm prefix -g)/bin:$PATH"
export PATH
hash -r
if [ "$(node_major)" -lt 20 ]; then
  log "node >= 20 is required, found $(node --version 2>/dev/null || echo none) at $(command -v node || echo nowhere)"
  exit 1
fi
log "node $(node --version) at $(command -v node), npm $(npm --version)"

# --- headers for native modules ------------------------------------------------------
# node-gyp downloads the Node headers tarball unless told where they are; nothing but the
# package registries can be reached here. The running Node's own prefix has them:
# Debian's and NodeSource's Node in /usr (include/node/common.gypi), the npm `node`
# package in $(npm root -g)/node/node_modules/node-linux-<arch>.
if [ -z "${npm_config_nodedir:-}" ]; then
  node_prefix=$(dirname "$(dirname "$(readlink -f "$(node -p process.execPath)")")")
  for candidate in "$node_prefix" "$(npm root -g)/node/node_modules/node-linux-$(node -p process.arch)" /usr; do
    if [ -f "$candidate/include/node/common.gypi" ] &&
      grep -qs "define NODE_MAJOR_VERSION $(node_major)\$" "$candidate/include/node/node_version.h"; then
      export npm_config_nodedir="$candidate"
      break
    fi
  done
fi
if [ -n "${npm_config_nodedir:-}" ]; then
  log "native modules build against the headers in $npm_config_nodedir"
else
  log "no headers for node $(node --version) found on this machine; node-gyp will try to download them"
fi

# --- the ripgrep archive @vscode/ripgrep would download ------------------------------
# @vscode/ripgrep's postinstall fetches ripgrep from GitHub, which cannot be reached.
# It takes a cached archive instead when one is present; build it from Debian's rg.
tmp_root=${TMPDIR:-/tmp}
for rg_pkg_version in 1.15.11; do
  cache_dir="$tmp_root/vscode-ripgrep-cache-$rg_pkg_version"
  archive="$cache_dir/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"
  if [ ! -s "$archive" ]; then
    log "caching ripgrep archive at $archive"
    mkdir -p "$cache_dir"
    staging=$(mktemp -d)
    cp "$(command -v rg)" "$staging/rg"
    tar -C "$staging" -czf "$archive" rg
    rm -rf "$staging"
  fi
done

# --- the extension's own dependencies --------------------------------------------------
if [ ! -d "$ROOT/vscode-client/node_modules" ] ||
  [ "$ROOT/vscode-client/package-lock.json" -nt "$ROOT/vscode-client/node_modules/.package-lock.json" ]; then
  log "npm ci in vscode-client"
  (cd "$ROOT/vscode-client" && npm ci --no-audit --no-fund >&2)
fi

# --- code-server -----------------------------------------------------------------------
if [ ! -x "$CODE_SERVER_BIN" ]; then
  log "installing code-server@$CODE_SERVER_VERSION into $CODE_SERVER_PREFIX (builds native modules; takes minutes)"
  mkdir -p "$CODE_SERVER_PREFIX"
  (
    cd "$CODE_SERVER_PREFIX"
    [ -f package.json ] || printf '{"name":"errand-code-server","private":true}\n' > package.json
    # npm 11 runs no dependency install scripts unless allowed; code-server's
    # postinstall runs a nested `npm install` in lib/vscode whose native modules
    # must build too, so allow them all for this one trusted install.
    npm_config_yes=true npm_config_unsafe_perm=true npm_config_dangerously_allow_all_scripts=true \
      npm install --no-audit --no-fund --no-save "code-server@$CODE_SERVER_VERSION" >&2
  )
fi
"$CODE_SERVER_BIN" --version >&2
echo "$CODE_SERVER_BIN"
