#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: setup, lint, types, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."

ERRAND_SETUP_DOCKER=1 bash scripts/setup.sh  # test extras: docker.io, procps, curl, wget, xfsprogs
if [[ -x scripts/start-dockerd.sh ]]; then
  bash scripts/start-dockerd.sh
fi

echo "== ruff" >&2
.venv/bin/ruff check server tests bench
.venv/bin/ruff format --check server tests bench
echo "== mypy" >&2
.venv/bin/mypy
echo "== lint-imports (the layers of ARCHITECTURE.md)" >&2
.venv/bin/lint-imports
echo "== pytest" >&2
.venv/bin/pytest -q -p no:cacheprovider "$@"

if [[ -x scripts/test-vscode.sh && "${ERRAND_SKIP_VSCODE:-0}" != "1" ]]; then
  echo "== vscode client" >&2
  bash scripts/test-vscode.sh
fi
