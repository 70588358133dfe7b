#!/usr/bin/env bash
# Trains (or resumes) the shipped counterfactual model and its dedicated 8-bit baseline
# (docs/TEXT.md, RESULTS.md "Counterfactual detection"). Long: on a 2-core machine about
# 12 s per joint step (two widths per step) and 6 s per dedicated step, 928 steps each for two
# epochs, so it spans several sessions; every run resumes from the checkpoints in $ANYBIT_TRAIN
# (default .train/, git-ignored) and writes each model only when its schedule ends.
#
#   bash scripts/train-cf.sh            # joint, then dedicated; logs in $ANYBIT_TRAIN/*.log
#
# Needs the SemEval-2020 Task 5 train files (../shared/data/semeval2020-task5) and MiniLM-L6
# (bash scripts/fetch-minilm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
TRAIN=${ANYBIT_TRAIN:-.train}
DATA=${ANYBIT_CF_DATA:-../shared/data/semeval2020-task5}
MODEL=$(bash scripts/fetch-minilm.sh)
mkdir -p "$TRAIN"
RUSTFLAGS="-C target-cpu=native" cargo build --release --target-dir target/native -p anybit-tools
BIN=target/native/release/anybit
common=(--model "$MODEL" --data "$DATA" --epochs 2 --batch 32 --lr 1e-4 --head-lr 1e-3 --seed 1 --max-tokens 128 --ckpt-every 20)
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
nice -n 19 "$BIN" cf-train "${common[@]}" --ckpt "$TRAIN/cf-joint" --out models/counterfactual.anybit 2>&1 | tee -a "$TRAIN/cf-joint.log"
nice -n 19 "$BIN" cf-train "${common[@]}" --dedicated --ckpt "$TRAIN/cf-dedicated" --out "$TRAIN/counterfactual-8bit.anybit" 2>&1 | tee -a "$TRAIN/cf-dedicated.log"
