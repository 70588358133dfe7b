#!/usr/bin/env bash
# Tests the npm package the way a user gets it: builds pkg/ from source (scripts/build-pkg.sh),
# `npm pack`s it, installs the tarball into a temporary project, and runs pkg-tests/ against that
# install: (a) Node 20, (b) a plain ES-module page and (c) a Vite 7 app in headless Chromium, and a
# strict TypeScript consumer. Prints the tarball's size.
# Usage: scripts/pkg-test.sh [node --test args, e.g. a test file]   KEEP_APP=1 keeps the project.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# The npm packages (playwright-core in e2e-tests/, Vite and TypeScript in pkg-tests/); scripts/setup.sh
# installs them too, but this script also runs on its own.
bash scripts/setup.sh npm

APP=$(mktemp -d "${TMPDIR:-/tmp}/anybit-pkg-app.XXXXXX")
[ -n "${KEEP_APP:-}" ] || trap 'rm -rf "$APP"' EXIT

bash scripts/build-pkg.sh --pack "$APP/pack" | tee "$APP/build.log"
tarball=$(tail -n 1 "$APP/build.log")
[ -f "$tarball" ] || { echo "pkg-test: no tarball" >&2; exit 1; }

echo "== pkg-test: installing $(basename "$tarball") into $APP"
cat > "$APP/package.json" <<'JSON'
{ "name": "anybit-consumer", "private": true, "type": "module" }
JSON
(cd "$APP" && npm install --no-audit --no-fund --prefer-offline "$tarball")
echo "export * from 'anybit';" > "$APP/entry.mjs"
cp -r pkg-tests/apps/plain pkg-tests/apps/vite pkg-tests/apps/ts "$APP/"
cp pkg-tests/apps/check.js "$APP/plain/"
cp pkg-tests/apps/progressive.js "$APP/plain/"
cp pkg-tests/apps/check.js "$APP/vite/"
cp models/mnist.anybit "$APP/plain/"
mkdir -p "$APP/vite/public" && cp models/mnist.anybit "$APP/vite/public/"

cd pkg-tests
if [ $# -eq 0 ]; then set -- tests/; fi
ANYBIT_PKG_APP=$APP node --test --test-concurrency=1 --test-reporter=spec "$@"
