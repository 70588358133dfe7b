#!/usr/bin/env python3
"""ONNX files of all-MiniLM-L6-v2 for the peer benchmark (bench/text.mjs, ONNX Runtime Web).

    bash scripts/fetch-minilm.sh                 # the model, into $ANYBIT_CACHE/minilm/model
    nice python3 scripts/minilm_onnx.py          # writes $ANYBIT_CACHE/minilm/onnx/model-{fp32,int8}.onnx

Needs Python 3 with numpy, onnx and onnxruntime (for the int8 file and the comparison);
tools/tests/fixtures/minilm/reference.json (scripts/minilm_reference.py) supplies the sentences
the int8 file is compared on.

The graph is written here op by op from model.safetensors (no PyTorch export), so the benchmark's
peer runs exactly the weights the anybit importer reads. Standard opset-17 ops only: Gather for
the three embeddings, LayerNormalization, MatMul + Add for every projection (weights stored
transposed, [in, out]), Reshape/Transpose for the 12 heads of 32, Softmax with BertModel's additive
mask, GELU as x * 0.5 * (1 + Erf(x / sqrt 2)), and the masked mean (ReduceSum of the masked hidden
state over ReduceSum of the mask, the count clamped at 1e-9 as sentence-transformers does).
Inputs input_ids, attention_mask, token_type_ids: int64 [batch, seq], both dynamic; outputs
embedding [batch, 384] and last_hidden_state [batch, seq, 384]. The pooler is left out: the
sentence embedding does not use it.

model-int8.onnx is onnxruntime's dynamic quantization with the settings transformers.js uses for
its default "q8" file (model_quantized.onnx), from huggingface/transformers.js scripts/convert.py
and scripts/quantize.py: weight type QInt8 (QUInt8 only for models with Conv), activations QUInt8
(dynamic), per_channel=True and reduce_range=True (convert.py turns both on for every model type
outside its NO_PER_CHANNEL_REDUCE_RANGE_MODELS list, which has no BERT), every op type in
onnxruntime's IntegerOpsRegistry (MatMul, Gather, ...: the embedding tables become int8 too),
extra options EnableSubgraph and MatMulConstBOnly (attention's activation-by-activation MatMuls
stay float).
"""
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in scripts/ (not ignored by git)
from minilm_reference import FIXTURE, HEADS, HIDDEN, LAYERS, load_safetensors, model_dir  # noqa: E402

OPSET = 17


def onnx_dir():
    cache = Path(os.environ.get("ANYBIT_CACHE", Path.home() / ".cache/anybit"))
    return cache / "minilm/onnx"


def build(W):
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, array, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(array, dtype=dtype)), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x, name, out):
        w = const(name + ".weight", W[name + ".weight"].T)  # torch stores [out, in]; MatMul wants [in, out]
        b = const(name + ".bias", W[name + ".bias"])
        return node("Add", [node("MatMul", [x, w], out + "/matmul"), b], out)

    def layer_norm(x, name, out):
        return node("LayerNormalization", [x, const(name + ".weight", W[name + ".weight"]), const(name + ".bias", W[name + ".bias"])], out, axis=-1, epsilon=1e-12)

    p = "embeddings."
    word = node("Gather", [const(p + "word_embeddings.weight", W[p + "word_embeddings.weight"]), "input_ids"], "emb/word")
    # Position ids as BertModel makes them, a slice of a stored 0..511 (its position_ids buffer),
    # then a Gather: the quantizer turns that table into int8 as it does in transformers.js's file.
    # (A Gather of a Range is rewritten by onnxruntime 1.32's optimizer into a Slice with scalar
    # starts, which then fails at run time.)
    seq = node("Shape", ["input_ids"], "emb/seq", start=1, end=2)
    pos_ids = node("Slice", [const("position_ids", np.arange(W[p + "position_embeddings.weight"].shape[0]), np.int64), const("zero_1d", [0], np.int64), seq], "emb/pos_ids")
    pos = node("Gather", [const(p + "position_embeddings.weight", W[p + "position_embeddings.weight"]), pos_ids], "emb/pos")
    typ = node("Gather", [const(p + "token_type_embeddings.weight", W[p + "token_type_embeddings.weight"]), "token_type_ids"], "emb/type")
    h = layer_norm(node("Add", [node("Add", [word, pos], "emb/word_pos"), typ], "emb/sum"), p + "LayerNorm", "emb/out")

    maskf = node("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    # BertModel's extended mask: (1 - mask) * lowest float, broadcast over heads and query rows.
    inv = node("Sub", [const("one_f", 1.0), maskf], "mask/inv")
    add_mask = node("Unsqueeze", [node("Mul", [inv, const("lowest_f", np.finfo(np.float32).min)], "mask/add2d"), const("axes_12", [1, 2], np.int64)], "mask/add")

    dh = HIDDEN // HEADS
    heads_shape = const("shape_heads", [0, 0, HEADS, dh], np.int64)  # 0 = keep batch and seq
    hidden_shape = const("shape_hidden", [0, 0, HIDDEN], np.int64)
    sqrt_dh = const("sqrt_dh", math.sqrt(dh))
    sqrt2 = const("sqrt2", math.sqrt(2.0))
    half = const("half", 0.5)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        o = f"l{i}/"
        split = lambda x, perm, tag: node("Transpose", [node("Reshape", [x, heads_shape], o + tag + "/heads")], o + tag + "/t", perm=perm)
        q = split(linear(h, p + "attention.self.query", o + "q"), [0, 2, 1, 3], "q")
        k = split(linear(h, p + "attention.self.key", o + "k"), [0, 2, 3, 1], "k")
        v = split(linear(h, p + "attention.self.value", o + "v"), [0, 2, 1, 3], "v")
        scores = node("Add", [node("Div", [node("MatMul", [q, k], o + "qk"), sqrt_dh], o + "scaled"), add_mask], o + "scores")
        probs = node("Softmax", [scores], o + "probs", axis=-1)
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v], o + "ctx_heads")], o + "ctx_t", perm=[0, 2, 1, 3]), hidden_shape], o + "ctx")
        attn = linear(ctx, p + "attention.output.dense", o + "attn_out")
        h = layer_norm(node("Add", [attn, h], o + "attn_res"), p + "attention.output.LayerNorm", o + "attn_ln")
        f = linear(h, p + "intermediate.dense", o + "ffn_in")
        erf = node("Erf", [node("Div", [f, sqrt2], o + "gelu/scaled")], o + "gelu/erf")
        g = node("Mul", [node("Mul", [f, half], o + "gelu/half"), node("Add", [erf, "one_f"], o + "gelu/1p")], o + "gelu")
        f2 = linear(g, p + "output.dense", o + "ffn_out")
        h = layer_norm(node("Add", [f2, h], o + "ffn_res"), p + "output.LayerNorm", o + "out" if i < LAYERS - 1 else "last_hidden_state")

    m3 = node("Unsqueeze", [maskf, const("axes_2", [2], np.int64)], "pool/mask")
    axes1 = const("axes_1", [1], np.int64)
    total = node("ReduceSum", [node("Mul", [h, m3], "pool/masked"), axes1], "pool/sum", keepdims=0)
    count = node("Clip", [node("ReduceSum", [m3, axes1], "pool/count_raw", keepdims=0), const("min_count", 1e-9)], "pool/count")
    node("Div", [total, count], "embedding")

    i64 = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "seq"])
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [i64("input_ids"), i64("attention_mask"), i64("token_type_ids")],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN]),
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", HIDDEN]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="anybit scripts/minilm_onnx.py")
    model.ir_version = 8  # onnxruntime-web and older runtimes read IR 8; opset 17 needs no newer
    return model


def write_fp32(path):
    import onnx

    model = build(load_safetensors(model_dir() / "model.safetensors"))
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_int8(src, dst):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    quantize_dynamic(
        str(src),
        str(dst),
        op_types_to_quantize=list(IntegerOpsRegistry.keys()),
        per_channel=True,
        reduce_range=True,
        weight_type=QuantType.QInt8,
        extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True},
    )
    return dst


def run(sess, ids, mask):
    ids = np.asarray(ids, dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": np.asarray(mask, dtype=np.int64), "token_type_ids": np.zeros_like(ids)}
    return sess.run(["embedding"], feeds)[0].astype(np.float64)


def main():
    import onnxruntime as ort

    out = onnx_dir()
    fp32 = write_fp32(out / "model-fp32.onnx")
    int8 = write_int8(fp32, out / "model-int8.onnx")
    for f in (fp32, int8):
        print(f"{f}: {f.stat().st_size:,} bytes ({f.stat().st_size / 2**20:.1f} MiB)")

    if not FIXTURE.exists():
        print(f"{FIXTURE} is missing: run scripts/minilm_reference.py for the int8-vs-fp32 comparison")
        return
    sentences = json.loads(FIXTURE.read_text())["sentences"]
    s32 = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    s8 = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    cos8, cos32 = [], []
    for s in sentences:
        mask = [[1] * len(s["ids"])]
        a, b = run(s32, [s["ids"]], mask)[0], run(s8, [s["ids"]], mask)[0]
        ref = np.array(s["embedding"])
        cos8.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        cos32.append(a @ ref / (np.linalg.norm(a) * np.linalg.norm(ref)))
    cos8 = np.array(cos8)
    worst = int(cos8.argmin())
    print(f"onnxruntime {ort.__version__}, {len(sentences)} fixture sentences:")
    print(f"  fp32 vs float64 reference: min cosine {min(cos32):.9f}")
    print(f"  int8 vs fp32: mean cosine {cos8.mean():.5f}, worst {cos8.min():.5f} (sentenceID {sentences[worst]['sentenceID']}, {len(sentences[worst]['ids'])} tokens), 5th percentile {np.percentile(cos8, 5):.5f}")


if __name__ == "__main__":
    main()
