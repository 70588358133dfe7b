#!/usr/bin/env bash
# Trains (or resumes) the shipped counterfactual model (docs/TEXT.md, RESULTS.md "Counterfactual
# detection") in two stages:
#   1. the dedicated 8-bit model: MiniLM-L6 fine-tuned at 8 bits only, 2 epochs (928 steps, about
#      2-6 s a step on 2 cores); written to $ANYBIT_TRAIN/counterfactual-8bit.anybit, the 8-bit
#      baseline RESULTS.md compares with;
#   2. the any-precision file: every width trained jointly (8 bits plus one lower width per step,
#      distillation from 8 bits) for 1 epoch (464 steps, about 4 s a step), starting from stage 1's
#      weights, at half stage 1's learning rates -> models/counterfactual.anybit.
# Starting the joint stage from a trained 8-bit model kept the 8-bit width at the dedicated
# model's level (2 epochs of joint training from MiniLM lost 0.02 of subtask-1 F1 there).
# Every run resumes from the checkpoints in $ANYBIT_TRAIN (default .train/, git-ignored) and writes
# each model only when its schedule ends, so it may span sessions.
#
#   bash scripts/train-cf.sh            # logs in $ANYBIT_TRAIN/*.log
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
common=(--data "$DATA" --batch 32 --seed 1 --max-tokens 128 --ckpt-every 20)
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
nice -n 19 "$BIN" cf-train "${common[@]}" --model "$MODEL" --dedicated --epochs 2 --lr 1e-4 --head-lr 1e-3 \
  --ckpt "$TRAIN/cf-dedicated" --out "$TRAIN/counterfactual-8bit.anybit" 2>&1 | tee -a "$TRAIN/cf-dedicated.log"
# Stage 1 leaves its fine-tuned weights as a BERT folder (HF names, its head) beside its checkpoint.
nice -n 19 "$BIN" cf-train "${common[@]}" --model "$TRAIN/cf-dedicated/finetuned" --epochs 1 --lr 5e-5 --head-lr 5e-4 \
  --eval-every 155 --ckpt "$TRAIN/cf-prog" --out models/counterfactual.anybit 2>&1 | tee -a "$TRAIN/cf-prog.log"
