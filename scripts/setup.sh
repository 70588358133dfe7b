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
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  step "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2.5 min)"
  # No --locked: the registry here lacks one of its locked dependency versions.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if ! command -v trunk >/dev/null || [ "$(trunk --version | awk '{print $2}')" != "$TRUNK_VERSION" ]; then
  step "cargo install trunk $TRUNK_VERSION (about 7.5 min)"
  # --locked: without it a newer cssparser breaks lightningcss.
  cargo install trunk --version "$TRUNK_VERSION" --locked --force
fi

# Reinstall when the lockfile's playwright-core differs from the installed one.
want_pw=$(node -p 'require("./e2e-tests/package-lock.json").packages["node_modules/playwright-core"].version')
have_pw=$(node -p 'require("./e2e-tests/node_modules/playwright-core/package.json").version' 2>/dev/null || true)
if [ "$want_pw" != "$have_pw" ]; then
  step "npm ci in e2e-tests (playwright-core $want_pw, drives /usr/bin/chromium)"
  (cd e2e-tests && npm ci --no-audit --no-fund)
fi
step "ready: rustc-web $(/usr/bin/rustc --version | awk '{print $2}'), wasm-bindgen $WASM_BINDGEN_VERSION, trunk $TRUNK_VERSION, $(/usr/bin/chromium --version 2>/dev/null)"
