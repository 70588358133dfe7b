#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build, serve and test anybit.
# Idempotent: each step checks first, so a second run takes seconds.
# Recipe and its traps: docs/toolchain.md.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
TRUNK_VERSION=0.21.14
APT_PACKAGES=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium chromium-driver dataset-fashion-mnist)

step() { printf '\n== setup: %s\n' "$*"; }
# cargo install puts its binaries here; a bare CI environment may not have it on PATH.
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

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

# Reinstall when the lockfile's playwright-core differs from the installed one.
want_pw=$(node -p 'require("./e2e-tests/package-lock.json").packages["node_modules/playwright-core"].version')
have_pw=$(node -p 'require("./e2e-tests/node_modules/playwright-core/package.json").version' 2>/dev/null || true)
if [ "$want_pw" != "$have_pw" ]; then
  step "npm ci in e2e-tests (playwright-core $want_pw, drives /usr/bin/chromium)"
  (cd e2e-tests && npm ci --no-audit --no-fund)
fi
# The npm package's tests (scripts/pkg-test.sh): playwright-core, Vite 7 and TypeScript.
want_pkg=$(sha256sum pkg-tests/package-lock.json | cut -d' ' -f1)
if [ "$want_pkg" != "$(cat pkg-tests/node_modules/.lock-sha256 2>/dev/null)" ]; then
  step "npm ci in pkg-tests (playwright-core, vite, typescript)"
  (cd pkg-tests && npm ci --no-audit --no-fund && echo "$want_pkg" > node_modules/.lock-sha256)
fi
step "ready: rustc-web $(/usr/bin/rustc --version | awk '{print $2}'), wasm-bindgen $WASM_BINDGEN_VERSION, trunk $TRUNK_VERSION, $(/usr/bin/chromium --version 2>/dev/null)"
