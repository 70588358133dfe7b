#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build, serve and test anybit.
# Idempotent: each step checks first, so a second run takes seconds.
# Usage: scripts/setup.sh [npm|bench]   (npm: only the test harness's npm packages; bench: those
# and the peer runtimes the benchmarks compare with, and the Python modules scripts/peer-models.sh
# needs: none of it is needed by a test)
# Recipe and its traps: docs/TOOLCHAIN.md.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
TRUNK_VERSION=0.21.14
APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium chromium-driver dataset-fashion-mnist)

step() { printf '\n== setup: %s\n' "$*"; }
# cargo install puts its binaries here; a bare CI environment may not have it on PATH.
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# The test harness's npm packages: e2e-tests/ holds the one Chromium launcher and static server
# (lib/, imported by pkg-tests/ and bench/ too) and so the one pin of playwright-core; pkg-tests/
# adds Vite 7 and TypeScript. Each is reinstalled when its lockfile differs from the one installed
# (its hash is stamped into node_modules/).
npm_ci() { # dir, what for
  local want
  want=$(sha256sum "$1/package-lock.json" | cut -d' ' -f1)
  if [ "$want" != "$(cat "$1/node_modules/.lock-sha256" 2>/dev/null)" ]; then
    step "npm ci in $1 ($2)"
    (cd "$1" && npm ci --no-audit --no-fund && echo "$want" > node_modules/.lock-sha256)
  fi
}
npm_packages() {
  npm_ci e2e-tests "playwright-core, drives /usr/bin/chromium for e2e-tests, pkg-tests and bench"
  npm_ci pkg-tests "vite, typescript"
}
# `setup.sh npm`: only these, for scripts that need nothing else (scripts/pkg-test.sh).
if [ "${1:-}" = npm ]; then
  npm_packages
  exit 0
fi
if [ "${1:-}" = bench ]; then
  npm_packages
  npm_ci bench "onnxruntime-web, the peer of bench/text.mjs"
  # scripts/peer_formats.py (run by scripts/peer-models.sh) writes and checks the ONNX files.
  if ! python3 -c "import numpy, onnx, onnxruntime" 2>/dev/null; then
    step "pip install numpy onnx onnxruntime (for scripts/peer-models.sh)"
    python3 -m pip install --user --break-system-packages -q numpy onnx onnxruntime
  fi
  exit 0
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Native tools are built with the machine's stable cargo; only wasm builds use Debian's rustc-web.
# The two cargo installs run side by side: each spends long stretches on one core (one big crate,
# the final link), so together they finish well before one-after-the-other on two cores.
INSTALL_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/anybit-setup.XXXXXX")
pids=()
names=()
install_bg() { # name, command...
  local name=$1 log="$INSTALL_LOGS/${1// /_}.log"
  shift
  step "$name (in the background; log: $log)"
  "$@" >"$log" 2>&1 &
  pids+=($!)
  names+=("$name")
}
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  # No --locked: the registry here lacks one of its locked dependency versions.
  install_bg "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION" \
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if ! command -v trunk >/dev/null || [ "$(trunk --version | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  # --locked: without it a newer cssparser breaks lightningcss.
  install_bg "cargo install trunk $TRUNK_VERSION" cargo install trunk --version "$TRUNK_VERSION" --locked --force
fi
install_failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    step "done: ${names[$i]}"
  else
    tail -n 40 "$INSTALL_LOGS/${names[$i]// /_}.log" >&2
    echo "setup: FAILED: ${names[$i]} (log above)" >&2
    install_failed=1
  fi
done
[ "$install_failed" = 0 ] || exit 1

npm_packages
step "ready: rustc-web $(/usr/bin/rustc --version | awk '{print $2}'), wasm-bindgen $WASM_BINDGEN_VERSION, trunk $TRUNK_VERSION, $(/usr/bin/chromium --version 2>/dev/null), playwright-core $(node -p 'require("./e2e-tests/node_modules/playwright-core/package.json").version')"
