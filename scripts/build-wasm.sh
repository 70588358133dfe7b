#!/usr/bin/env bash
# Builds the anybit crate for wasm32 in four variants and runs wasm-bindgen on each:
#
#   pkg/dist/<variant>/{anybit.js, anybit_bg.wasm, anybit.d.ts, ...}
#
#   scalar   no SIMD: runs on every engine
#   simd     +simd128
#   relaxed  +simd128,+relaxed-simd (fails to load where relaxed SIMD is missing, so it is separate)
#   threads  +simd128,+relaxed-simd with shared memory and wasm-bindgen-rayon (needs a cross-origin
#            isolated page)
#
# Usage: scripts/build-wasm.sh [variant ...]     (default: all four)
#
# Uses Debian's rustc-web with -Z build-std (docs/TOOLCHAIN.md; installed by
# scripts/setup.sh). The variants share one cargo target folder: cargo (>= 1.85) puts RUSTFLAGS
# into each artifact's hash, so the four std and dependency builds sit side by side, while the
# host-side proc macros and build scripts (RUSTFLAGS do not apply to them with --target) are
# compiled once instead of four times. Each variant's .wasm is copied to its own folder
# (--artifact-dir). The one thing the variants do share is the cdylib's unhashed file name, so
# cargo would relink (recompile) the anybit crate on every switch of variant; a stamp per variant
# (flags, compiler, and no input newer than the last build) skips cargo when nothing changed, so
# a rerun (e.g. Trunk's pre_build hook) takes a second.
#
# Environment: ANYBIT_WASM_TARGET_DIR (default $CARGO_TARGET_DIR/wasm or target/wasm; never one
# folder for two checkouts whose sources differ: both crates link the same unhashed anybit.wasm,
# and cargo, finding its own crate fresh, hands a checkout the other one's wasm),
# WASM_RUSTC (default /usr/bin/rustc).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ALL_VARIANTS=(scalar simd relaxed threads)
if [ $# -gt 0 ]; then VARIANTS=("$@"); else VARIANTS=("${ALL_VARIANTS[@]}"); fi

TARGET_ROOT=${ANYBIT_WASM_TARGET_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/wasm}
# One build at a time: trunk's pre_build hook and a direct call share the per-variant folders
# (a concurrent run once deleted the other's wasm-bindgen output mid-write).
mkdir -p "$TARGET_ROOT"
exec 9>"$TARGET_ROOT/.build-lock"
flock 9
WASM_RUSTC=${WASM_RUSTC:-/usr/bin/rustc}
DIST=$ROOT/pkg/dist

die() { echo "build-wasm: $*" >&2; exit 1; }

[ -x "$WASM_RUSTC" ] || die "$WASM_RUSTC not found: run scripts/setup.sh (installs Debian's rustc-web)"
want_bindgen=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
have_bindgen=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}') || true
[ "$have_bindgen" = "$want_bindgen" ] ||
  die "wasm-bindgen CLI ${have_bindgen:-missing}, crate wants $want_bindgen: run scripts/setup.sh"

# Link arguments for the threads build (docs/TOOLCHAIN.md): without --shared-memory/--import-memory and the
# exported TLS symbols, initThreadPool fails with "DataCloneError: #<Memory> could not be cloned".
THREAD_LINK_ARGS="-C link-arg=--shared-memory -C link-arg=--max-memory=1073741824 -C link-arg=--import-memory \
-C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size \
-C link-arg=--export=__tls_align -C link-arg=--export=__tls_base"

rustflags_for() {
  case $1 in
    scalar) echo "" ;;
    simd) echo "-C target-feature=+simd128" ;;
    relaxed) echo "-C target-feature=+simd128,+relaxed-simd" ;;
    threads) echo "-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128,+relaxed-simd $THREAD_LINK_ARGS" ;;
    *) die "unknown variant '$1' (known: ${ALL_VARIANTS[*]})" ;;
  esac
}

size_line() {
  local f=$1 raw gz
  raw=$(stat -c %s "$f")
  gz=$(gzip -9c "$f" | wc -c)
  printf '  %-8s %9d bytes  %8d gzip  %s\n' "$2" "$raw" "$gz" "${f#"$ROOT"/}"
}

# What the wasm builds are made from (the crate has only registry dependencies, pinned by Cargo.lock).
INPUTS=(crate/src crate/Cargo.toml Cargo.toml Cargo.lock .cargo)

start=$(date +%s)
sizes=()
for v in "${VARIANTS[@]}"; do
  flags=$(rustflags_for "$v")
  features=()
  [ "$v" = threads ] && features=(--features threads)
  artifacts=$TARGET_ROOT/artifacts/$v
  out=$DIST/$v
  echo "== build-wasm: $v"
  inputs_stamp=$artifacts/inputs.stamp
  # ROOT too: checkouts sharing a target folder (ANYBIT_WASM_TARGET_DIR) must not share stamps.
  want_inputs="$ROOT|$flags|${features[*]}|$("$WASM_RUSTC" -V)|wasm-bindgen $want_bindgen"
  if [ -f "$out/anybit_bg.wasm" ] && [ "$(cat "$inputs_stamp" 2>/dev/null)" = "$want_inputs" ] &&
    [ -z "$(find "${INPUTS[@]}" -newer "$inputs_stamp" -print -quit 2>/dev/null)" ]; then
    echo "   up to date"
    sizes+=("$(size_line "$out/anybit_bg.wasm" "$v")")
    continue
  fi
  mkdir -p "$artifacts"
  build_start=$artifacts/build-start
  touch "$build_start"
  # RUSTFLAGS is always set (possibly empty) so that it, not .cargo/config.toml, decides the features.
  env -u CARGO_ENCODED_RUSTFLAGS RUSTC="$WASM_RUSTC" RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags" \
    cargo build --quiet -p anybit --lib --release --target wasm32-unknown-unknown \
    -Z build-std=std,panic_abort -Z unstable-options --target-dir "$TARGET_ROOT" \
    --artifact-dir "$artifacts" "${features[@]}"
  wasm=$artifacts/anybit.wasm
  stamp=$artifacts/bindgen-version
  if [ -f "$out/anybit_bg.wasm" ] && [ "$out/anybit_bg.wasm" -nt "$wasm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want_bindgen" ]; then
    echo "   wasm-bindgen: up to date"
  else
    # Generate beside the final folder and swap it in, so a server never sees a half-written build.
    tmp=$TARGET_ROOT/bindgen/$v
    rm -rf "$tmp"
    wasm-bindgen --target web --out-dir "$tmp" --out-name anybit "$wasm"
    if [ "$v" = threads ]; then
      # wasm-bindgen-rayon's worker does import('../../..'), which only bundlers resolve. Point it at
      # the generated module so plain ES modules work too (bundlers resolve the explicit path as well).
      helpers=$(find "$tmp/snippets" -name workerHelpers.js)
      [ -n "$helpers" ] || die "threads build has no wasm-bindgen-rayon workerHelpers.js"
      sed -i "s#import('../../..')#import('../../../anybit.js')#" $helpers
      grep -q "import('../../../anybit.js')" $helpers || die "could not rewrite the import in $helpers"
    fi
    mkdir -p "$DIST"
    rm -rf "$out"
    mv "$tmp" "$out"
    echo "$want_bindgen" > "$stamp"
  fi
  # Dated when the build started: a file saved during the build still counts as newer.
  echo "$want_inputs" > "$inputs_stamp"
  touch -r "$build_start" "$inputs_stamp"
  sizes+=("$(size_line "$out/anybit_bg.wasm" "$v")")
done

echo "== build-wasm: done in $(( $(date +%s) - start )) s; sizes:"
printf '%s\n' "${sizes[@]}"
