#!/usr/bin/env bash
# Runs the attack evaluations behind RESULTS.md ("Adversarial examples"): every attack on both
# shipped models, with and without ADV-ReLU, each command's JSON last line saved to
# results/attacks/NAME.json and its table to NAME.log. Skips runs whose JSON exists (rerun after
# deleting it). Needs the MNIST and Fashion-MNIST test sets (tools/README.md says where).
#
# Usage: scripts/attack-results.sh [target|table|transfer|all]   (default: all)
# The binary is built with -C target-cpu=native in target/native (same results, faster).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=results/attacks
mkdir -p "$OUT"
RUSTFLAGS="-C target-cpu=native" cargo build --release -q -p anybit-tools --target-dir target/native
BIN=target/native/release/anybit
MNIST_DIR=${MNIST_DIR:-/work/shared/data/mnist}
FASHION_DIR=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}

run() { # name, args...
  local name=$1; shift
  [ -s "$OUT/$name.json" ] && { echo "have $name"; return; }
  echo "== $name: anybit attack $*"
  local t0=$SECONDS
  "$BIN" attack "$@" > "$OUT/$name.log"
  tail -n 1 "$OUT/$name.log" > "$OUT/$name.json"
  echo "   $((SECONDS - t0)) s"
}

models() { # calls "$@" with model, dataset flags, short name
  "$@" models/mnist.anybit "--dataset mnist --data-dir $MNIST_DIR" mnist
  "$@" models/fashion-mnist.anybit "--dataset fashion-mnist --data-dir $FASHION_DIR" fashion
}

# The ADV-ReLU comparison (issue 15): minimal-perturbation attacks at 8 and 2 bits.
target() {
  local m=$1 d=$2 s=$3
  for adv in "" --adv-relu; do
    local tag=${adv:+-adv}
    run "$s-deepfool-8-2$tag" --model "$m" $d --attack deepfool --bits 8,2 --n 1000 $adv
    run "$s-pgd-l2-min-8-2$tag" --model "$m" $d --attack pgd-l2 --min-eps --steps 20 --step-size 0.25 --search-steps 6 --bits 8,2 --n 200 $adv
    run "$s-cw-l2-8-2$tag" --model "$m" $d --attack cw-l2 --bits 8,2 --n 50 $adv
  done
}

# Every attack at widths 8, 4, 2, 1 on the first 50 correctly classified images (C&W: 10 at 4
# and 1; its 8 and 2 come from target()).
table() {
  local m=$1 d=$2 s=$3
  for adv in "" --adv-relu; do
    local tag=${adv:+-adv}
    for a in fgsm bim pgd-linf pgd-l2 mi-fgsm deepfool; do
      run "$s-$a-table$tag" --model "$m" $d --attack $a --bits 8,4,2,1 --n 50 $adv
    done
    run "$s-cw-l2-4-1$tag" --model "$m" $d --attack cw-l2 --bits 4,1 --n 10 $adv
  done
}

transfer() {
  local m=$1 d=$2 s=$3
  for a in pgd-linf deepfool; do
    run "$s-$a-transfer" --model "$m" $d --attack $a --bits 1-8 --n 100 --transfer
  done
}

case ${1:-all} in
  target) models target ;;
  table) models table ;;
  transfer) models transfer ;;
  all)
    run mnist-pgd-linf-8-n1000 --model models/mnist.anybit --dataset mnist --data-dir "$MNIST_DIR" --attack pgd-linf --bits 8 --n 1000
    models target; models transfer; models table ;;
  *) echo "usage: $0 [target|table|transfer|all]" >&2; exit 2 ;;
esac
