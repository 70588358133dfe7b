#!/usr/bin/env bash
# The model files of the whole-model peer benchmark (bench/models.mjs): every workload as anybit,
# ONNX (fp32 and int8 QDQ) and TF.js files, with the reference outputs the benchmark checks every
# engine against before it times anything.
#
#   bash scripts/peer-models.sh                     # then: node bench/models.mjs
#   ANYBIT_CACHE=/some/dir bash scripts/peer-models.sh
#   ANYBIT_NO_BUILD=1 bash scripts/peer-models.sh   # use target/native/release/anybit as it is
#
# Result, in $ANYBIT_CACHE/peers/ (ANYBIT_CACHE defaults to ~/.cache/anybit):
#   resnet20.anybit, conv3x3.anybit      `anybit bench-model` (random weights, seed 1: speed only)
#   {mnist,fashion,resnet20,conv3x3}/    `anybit peer-export --bits 8`: graph.json, weights.bin,
#                                        reference.json; then scripts/peer_formats.py:
#                                        model-fp32.onnx, model-int8.onnx, tfjs/{model.json,weights.bin};
#                                        bits1/: the same export at 1 bit (bench/models.mjs reads its
#                                        reference.json to check anybit's 1-bit outputs)
# mnist and fashion are the shipped models (models/mnist.anybit, models/fashion-mnist.anybit) with
# the first 32 test images of fixtures/ as reference inputs; resnet20 has 8 seeded uniform inputs,
# conv3x3 2 (its output is 28x28x64 floats each).
#
# The tools (target/native/release/anybit) go through cargo first, which rebuilds them only when a
# source changed (a second or two when nothing did; a binary left from another tree state once
# exported wrong biases, which peer_formats.py's check caught). Needs Python 3 with numpy, onnx
# and onnxruntime. Exits non-zero if an ONNX file does not reproduce the float outputs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${ANYBIT_CACHE:-$HOME/.cache/anybit}"
OUT="$CACHE/peers"
BIN="$ROOT/target/native/release/anybit"

if [ "${ANYBIT_NO_BUILD:-0}" != 1 ] || [ ! -x "$BIN" ]; then
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
  # anybit's own outputs at 1 bit on the same inputs: the benchmark checks its 1-bit runs with them.
  "$BIN" peer-export --model "$model" --bits 1 --out "$OUT/$name/bits1" "$@"
}
export_one mnist models/mnist.anybit --images fixtures/mnist-t100-images.idx3 --count 32
export_one fashion models/fashion-mnist.anybit --images fixtures/fmnist-t100-images.idx3 --count 32
export_one resnet20 "$OUT/resnet20.anybit" --count 8
export_one conv3x3 "$OUT/conv3x3.anybit" --count 2

nice python3 scripts/peer_formats.py "$OUT/mnist" "$OUT/fashion" "$OUT/resnet20" "$OUT/conv3x3"
echo "peer-models: done: $OUT" >&2
