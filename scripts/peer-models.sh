#!/usr/bin/env bash
# The model files of the whole-model peer benchmark (bench/models.mjs): every workload as anybit,
# ONNX (fp32 and int8 QDQ) and TF.js files, with the reference outputs the benchmark checks every
# engine against before it times anything.
#
#   bash scripts/peer-models.sh                     # then: node bench/models.mjs
#   ANYBIT_CACHE=/some/dir bash scripts/peer-models.sh
#   ANYBIT_BUILD=1 bash scripts/peer-models.sh      # rebuild the tools first even if they exist
#
# Result, in $ANYBIT_CACHE/peers/ (ANYBIT_CACHE defaults to ~/.cache/anybit):
#   resnet20.anybit, conv3x3.anybit      `anybit bench-model` (random weights, seed 1: speed only)
#   {mnist,fashion,resnet20,conv3x3}/    `anybit peer-export --bits 8`: graph.json, weights.bin,
#                                        reference.json; then scripts/peer_formats.py:
#                                        model-fp32.onnx, model-int8.onnx, tfjs/{model.json,weights.bin}
# mnist and fashion are the shipped models (models/mnist.anybit, models/fashion-mnist.anybit) with
# the first 32 test images of fixtures/ as reference inputs; resnet20 has 8 seeded uniform inputs,
# conv3x3 2 (its output is 28x28x64 floats each).
#
# The tools (target/native/release/anybit) are built only when the binary is missing or has no
# peer-export command (2 cores: a cold build takes minutes). Needs Python 3 with numpy, onnx and
# onnxruntime.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${ANYBIT_CACHE:-$HOME/.cache/anybit}"
OUT="$CACHE/peers"
BIN="$ROOT/target/native/release/anybit"

if [ "${ANYBIT_BUILD:-0}" = 1 ] || [ ! -x "$BIN" ] || ! "$BIN" peer-export --help >/dev/null 2>&1; then
  echo "peer-models: building the tools (target/native/release/anybit)" >&2
  RUSTFLAGS="-C target-cpu=native" cargo build --release --target-dir target/native -p anybit-tools
fi

mkdir -p "$OUT"
"$BIN" bench-model --arch resnet20 --out "$OUT/resnet20.anybit"
"$BIN" bench-model --arch conv3x3 --out "$OUT/conv3x3.anybit"

export_one() { # name model.anybit [peer-export options...]
  local name="$1" model="$2"
  shift 2
  rm -rf "$OUT/$name"
  "$BIN" peer-export --model "$model" --bits 8 --out "$OUT/$name" "$@"
}
export_one mnist models/mnist.anybit --images fixtures/mnist-t100-images.idx3 --count 32
export_one fashion models/fashion-mnist.anybit --images fixtures/fmnist-t100-images.idx3 --count 32
export_one resnet20 "$OUT/resnet20.anybit" --count 8
export_one conv3x3 "$OUT/conv3x3.anybit" --count 2

nice python3 scripts/peer_formats.py "$OUT/mnist" "$OUT/fashion" "$OUT/resnet20" "$OUT/conv3x3"
echo "peer-models: done: $OUT" >&2
