#!/usr/bin/env bash
# Builds the npm package in pkg/ from source: runs scripts/build-wasm.sh (the four wasm-bindgen
# builds in pkg/dist/, where the web app also takes them) and copies each build's JS glue, wasm
# binary and (threads) wasm-bindgen-rayon snippet into pkg/wasm/<variant>/ (gitignored), the
# folders pkg/package.json ships. Nothing generated is edited here; the one rewrite (the
# wasm-bindgen-rayon worker import, for plain ES modules) is build-wasm.sh's. The generated .d.ts
# files stay behind: pkg/index.d.ts is the package's typed API.
#
# Usage: scripts/build-pkg.sh [--pack DIR]   (--pack: also `npm pack` the package into DIR and
# print the tarball's path on the last line)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PACK_DIR=""
if [ "${1:-}" = --pack ]; then PACK_DIR=${2:?--pack needs a folder}; fi

bash scripts/build-wasm.sh scalar simd relaxed threads

OUT=$ROOT/pkg/wasm
rm -rf "$OUT.tmp"
for v in scalar simd relaxed threads; do
  src=$ROOT/pkg/dist/$v
  [ -f "$src/anybit.js" ] && [ -f "$src/anybit_bg.wasm" ] || { echo "build-pkg: $src is incomplete" >&2; exit 1; }
  mkdir -p "$OUT.tmp/$v"
  cp "$src/anybit.js" "$src/anybit_bg.wasm" "$OUT.tmp/$v/"
  [ -d "$src/snippets" ] && cp -r "$src/snippets" "$OUT.tmp/$v/"
done
grep -rq "import('../../../anybit.js')" "$OUT.tmp/threads/snippets" ||
  { echo "build-pkg: the threads build lacks build-wasm.sh's worker import rewrite" >&2; exit 1; }
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "== build-pkg: pkg/wasm/{scalar,simd,relaxed,threads} ready"

if [ -n "$PACK_DIR" ]; then
  mkdir -p "$PACK_DIR"
  tarball=$(cd pkg && npm pack --silent --pack-destination "$PACK_DIR")
  tarball=$PACK_DIR/$(echo "$tarball" | tail -n 1)
  raw=$(stat -c %s "$tarball")
  echo "== build-pkg: packed $(basename "$tarball"): $raw bytes ($(( (raw + 1023) / 1024 )) KiB, gzip)"
  for v in scalar simd relaxed threads; do
    printf '   wasm %-8s %8d bytes  %7d gzip\n' "$v" "$(stat -c %s "$OUT/$v/anybit_bg.wasm")" "$(gzip -9c "$OUT/$v/anybit_bg.wasm" | wc -c)"
  done
  echo "$tarball"
fi
