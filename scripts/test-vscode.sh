#!/usr/bin/env bash
# The VS Code client's tests: build (failing when src/protocol.ts is stale against the
# server's schema), unit tests, packaging with vsce, and the end-to-end test in a real
# VS Code (code-server + headless Chromium), which saves docs/screenshots/*.png.
# Needs the Python venv (.venv, from scripts/setup.sh); installs the rest itself.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

if [[ ! -x .venv/bin/errand ]]; then
  echo "test-vscode: .venv/bin/errand is missing; run scripts/setup.sh first" >&2
  exit 1
fi

CODE_SERVER=$(bash scripts/setup-vscode.sh | tail -n 1)
export CODE_SERVER
# The Node that setup-vscode.sh checked or installed (npm's global bin folder first).
PATH="$(npm prefix -g)/bin:$PATH"
export PATH
hash -r

cd vscode-client
echo "== vscode-client: generated protocol types" >&2
npm run --silent check-generated
echo "== vscode-client: typecheck and bundle" >&2
npm run --silent compile
npm run --silent bundle
echo "== vscode-client: unit tests" >&2
node --test out/test/unit/
echo "== vscode-client: package" >&2
npx --no-install vsce package --no-dependencies --out dist/errand.vsix >&2
echo "== vscode-client: end-to-end in code-server" >&2
node out/test/e2e/run.js
