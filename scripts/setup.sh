#!/usr/bin/env bash
# Installs everything errand needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (git, bubblewrap, ...), then a virtualenv at .venv with errand and
# its dev tools at the versions pinned in constraints.txt. Safe to run again; it skips
# what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(git bubblewrap ca-certificates python3 python3-venv python3-pip)
if [[ "${ERRAND_SETUP_DOCKER:-0}" == "1" ]]; then
  # procps: the engine runs `ps` for `docker top`, which the Docker backend uses to find
  # leftover processes; docker.io does not depend on it.
  APT_PACKAGES+=(docker.io procps curl wget xfsprogs)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  echo "setup: creating .venv with $($PYTHON --version)" >&2
  $PYTHON -m venv .venv
fi
# Versions come from constraints.txt (exact pins of everything in the venv); the stamp
# records what was installed, so a changed pyproject.toml or constraints.txt (a pull, a
# checkout of another branch) reinstalls.
stamp=.venv/.errand-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  echo "setup: installing errand and its dev tools into .venv (versions from constraints.txt)" >&2
  .venv/bin/python -m pip install -q -c constraints.txt --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]'
  echo "$want" >"$stamp"
fi
echo "setup: ready ($(.venv/bin/errand --version))" >&2
