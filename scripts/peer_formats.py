#!/usr/bin/env python3
"""ONNX and TF.js files of an `anybit peer-export` folder, for the peer benchmark (bench/models.mjs).

    target/native/release/anybit peer-export --model models/mnist.anybit --bits 8 \\
        --images fixtures/mnist-t100-images.idx3 --count 32 --out DIR
    nice python3 scripts/peer_formats.py DIR [DIR ...]

(scripts/peer-models.sh does both for every workload of the benchmark.) Needs Python 3 with numpy,
onnx and onnxruntime; no TensorFlow (the TF.js file is written as JSON + bytes here and checked
against the reference by bench/models.mjs in the browser, before any timing).

Reads DIR/graph.json, DIR/weights.bin, DIR/reference.json (tools/src/peer.rs says what they hold)
and writes:

- DIR/model-fp32.onnx: opset 17. Graph input "input", float [1, h, w, c] (NHWC, the layout every
  runtime of the benchmark is fed), one Transpose to NCHW right after it; conv2d -> Conv (weights
  OHWI -> OIHW, pads [t, l, b, r] are ONNX's [x1_begin, x2_begin, x1_end, x2_end] as they are,
  strides, dilations, group), clip -> Clip (max input absent for a ReLU), max_pool -> MaxPool,
  avg_pool -> AveragePool(count_include_pad=0), global_avg_pool -> GlobalAveragePool, add -> Add,
  dense -> Flatten (of the NCHW tensor) + Gemm(transB=1) whose weight columns are permuted from the
  export's NHWC-flattened order into NCHW order (no Transpose back before Flatten; a flatten whose
  result goes anywhere but into a dense gets Transpose-to-NHWC + Flatten instead), softmax ->
  Softmax, affine -> Mul + Add. Output "output": [1, n] for a vector, and for an image-shaped output
  (the conv3x3 workload) a Transpose back to NHWC, so it compares with the reference as it is.
- DIR/model-int8.onnx: "the int8 QDQ form ONNX Runtime's quantizer makes": onnxruntime.quantization
  quantize_static(quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
  activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax, default
  op_types_to_quantize, reduce_range=False) on model-fp32.onnx, calibrated on reference.json's
  inputs (all of them); without quant_pre_process (no BatchNorm to fold, every shape is static;
  ORT Web's optimizer fuses the QDQ pairs into QLinear ops when it loads the file).
- DIR/tfjs/model.json + DIR/tfjs/weights.bin: a TF.js layers model (format "layers-model",
  tf.loadLayersModel), a functional Keras topology in channels_last: InputLayer [null, h, w, c];
  Conv2D (kernel [kh, kw, in, out]) with padding 'same' or 'valid' where TF's rule gives exactly
  the export's padding, else ZeroPadding2D + 'valid' (e.g. a stride-2 3x3 conv padded 1 on every
  side: TF's 'same' would pad 0 on top and 1 below); groups == in channels -> DepthwiseConv2D;
  clip with min 0 -> ReLU layer (max_value = the clip's max, none for a plain ReLU);
  MaxPooling2D / AveragePooling2D ('same' averages exclude the padding, as the export's do);
  GlobalAveragePooling2D; Add; Flatten (Keras flattens channels_last in NHWC order: the dense
  weights are used as exported, transposed to [in, out]) + Dense; Softmax; affine -> a 1x1
  DepthwiseConv2D (image) or a diagonal Dense (vector). No Lambda layers.

Checks (printed): model-fp32.onnx under onnxruntime (CPU) against reference.json's float_outputs,
max |diff| <= 1e-4 * max(1, max |ref|) per output (exits non-zero beyond it); model-int8.onnx's top-1
agreement with the float outputs and with anybit's quantized outputs at this width, and the cosine
of its outputs with the float ones (reported, not a pass/fail: int8 is not meant to be exact).
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ in scripts/ (not ignored by git)

OPSET = 17


def load(folder):
    graph = json.loads((folder / "graph.json").read_text())
    blob = (folder / "weights.bin").read_bytes()
    reference = json.loads((folder / "reference.json").read_text())

    def tensor(t):
        n = int(np.prod(t["shape"]))
        return np.frombuffer(blob, dtype="<f4", count=n, offset=t["offset"]).reshape(t["shape"]).astype(np.float32)

    return graph, tensor, reference


def consumers(graph, name):
    return [n for n in graph["nodes"] if name in n["inputs"]]


def out_size(size, k, s, d, p0, p1):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def shapes(graph):
    """Shape of every tensor without the batch: (h, w, c) for images, (n,) for vectors."""
    sh = {"input": tuple(graph["input"]["shape"])}
    for n in graph["nodes"]:
        x = sh[n["inputs"][0]]
        op = n["op"]
        if op == "conv2d":
            o, kh, kw, _ = n["weight"]["shape"]
            t, l, b, r = n["padding"]
            sh[n["name"]] = (out_size(x[0], kh, n["stride"][0], n["dilation"][0], t, b),
                             out_size(x[1], kw, n["stride"][1], n["dilation"][1], l, r), o)
        elif op in ("max_pool", "avg_pool"):
            kh, kw = n["kernel"]
            t, l, b, r = n["padding"]
            sh[n["name"]] = (out_size(x[0], kh, n["stride"][0], 1, t, b), out_size(x[1], kw, n["stride"][1], 1, l, r), x[2])
        elif op == "global_avg_pool":
            sh[n["name"]] = (x[2],)
        elif op == "flatten":
            sh[n["name"]] = (int(np.prod(x)),)
        elif op == "dense":
            sh[n["name"]] = (n["weight"]["shape"][0],)
        elif op in ("clip", "add", "softmax", "affine"):
            sh[n["name"]] = x
        else:
            raise SystemExit(f"{n['name']}: unknown op {op}")
    return sh


def nhwc_to_nchw_columns(w, hwc):
    """Dense weight [out, h*w*c] over an NHWC-flattened input -> [out, c*h*w] for an NCHW one."""
    h, wd, c = hwc
    return np.ascontiguousarray(w.reshape(w.shape[0], h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1))


# ---------------------------------------------------------------------------------------------
# ONNX


def build_onnx(graph, tensor):
    from onnx import TensorProto, helper, numpy_helper

    sh = shapes(graph)
    inits, nodes = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(array, dtype=np.float32)), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    h, w, c = sh["input"]
    # What each export tensor is called in the ONNX graph: images are NCHW there; a vector made by
    # `flatten` of an image may be in NCHW order ("chw" -> the image's (h, w, c)), fixed by a dense.
    name = {"input": node("Transpose", ["input"], "input.nchw", perm=[0, 3, 1, 2])}
    chw_order = {}

    for n in graph["nodes"]:
        op, out = n["op"], n["name"]
        x = name[n["inputs"][0]]
        xs = sh[n["inputs"][0]]
        if op == "conv2d":
            wt = tensor(n["weight"]).transpose(0, 3, 1, 2)  # OHWI -> OIHW
            ins = [x, const(f"{out}.weight", wt)]
            if n.get("bias"):
                ins.append(const(f"{out}.bias", tensor(n["bias"])))
            name[out] = node("Conv", ins, out, kernel_shape=list(wt.shape[2:]), strides=n["stride"], pads=n["padding"],
                             dilations=n["dilation"], group=n["groups"])
        elif op == "clip":
            ins = [x, const(f"{out}.min", n["min"] if n.get("min") is not None else -np.inf)]
            if n.get("max") is not None:
                ins.append(const(f"{out}.max", n["max"]))
            name[out] = node("Clip", ins, out)
            if n["inputs"][0] in chw_order:
                chw_order[out] = chw_order[n["inputs"][0]]
        elif op in ("max_pool", "avg_pool"):
            attrs = dict(kernel_shape=n["kernel"], strides=n["stride"], pads=n["padding"])
            if op == "avg_pool":
                attrs["count_include_pad"] = 0
            name[out] = node("MaxPool" if op == "max_pool" else "AveragePool", [x], out, **attrs)
        elif op == "global_avg_pool":
            g = node("GlobalAveragePool", [x], f"{out}.4d")
            name[out] = node("Flatten", [g], out, axis=1)
        elif op == "add":
            name[out] = node("Add", [x, name[n["inputs"][1]]], out)
            a, b = (chw_order.get(i) for i in n["inputs"])
            if a != b:
                raise SystemExit(f"{out}: adds vectors flattened in different orders")
            if a:
                chw_order[out] = a
        elif op == "flatten":
            if len(xs) == 3 and all(m["op"] == "dense" for m in consumers(graph, out)):
                name[out] = node("Flatten", [x], out, axis=1)  # NCHW order: the dense weights follow
                chw_order[out] = xs
            elif len(xs) == 3:
                t = node("Transpose", [x], f"{out}.nhwc", perm=[0, 2, 3, 1])
                name[out] = node("Flatten", [t], out, axis=1)
            else:
                name[out] = x
        elif op == "dense":
            wt = tensor(n["weight"])
            if len(xs) == 3:  # a dense straight on an image: flatten it (NCHW) here
                x = node("Flatten", [x], f"{out}.flat", axis=1)
                wt = nhwc_to_nchw_columns(wt, xs)
            elif n["inputs"][0] in chw_order:
                wt = nhwc_to_nchw_columns(wt, chw_order[n["inputs"][0]])
            ins = [x, const(f"{out}.weight", wt)]
            if n.get("bias"):
                ins.append(const(f"{out}.bias", tensor(n["bias"])))
            name[out] = node("Gemm", ins, out, transB=1)
        elif op == "softmax":
            if n["inputs"][0] in chw_order:
                raise SystemExit(f"{out}: softmax of an NCHW-flattened vector")
            name[out] = node("Softmax", [x], out, axis=1)
        elif op == "affine":
            scale, bias = tensor(n["scale"]), tensor(n["bias"])
            if len(xs) == 3:
                scale, bias = scale.reshape(1, -1, 1, 1), bias.reshape(1, -1, 1, 1)
            elif n["inputs"][0] in chw_order:
                raise SystemExit(f"{out}: affine of an NCHW-flattened vector")
            m = node("Mul", [x, const(f"{out}.scale", scale)], f"{out}.mul")
            name[out] = node("Add", [m, const(f"{out}.bias", bias)], out)
        else:
            raise SystemExit(f"{out}: unknown op {op}")

    final, fs = graph["output"], sh[graph["output"]]
    if final in chw_order:
        raise SystemExit(f"the output {final} is an NCHW-flattened vector")
    if len(fs) == 3:
        node("Transpose", [name[final]], "output", perm=[0, 2, 3, 1])
        out_shape = [1, *fs]
    else:
        node("Identity", [name[final]], "output")
        out_shape = [1, fs[0]]
    g = helper.make_graph(nodes, graph["model"], [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, h, w, c])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="anybit scripts/peer_formats.py")
    model.ir_version = 8
    import onnx

    onnx.checker.check_model(model, full_check=True)
    return model


def quantize_int8(fp32_path, int8_path, inputs, shape):
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    import logging

    # Its advice to run quant_pre_process first: skipped (the graph has no BatchNorm or shapes to
    # infer, and ORT Web's own optimizer, graphOptimizationLevel 'all', fuses the QDQ pairs at load).
    logging.getLogger().setLevel(logging.ERROR)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": np.asarray(x, dtype=np.float32).reshape(1, *shape)} for x in inputs])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(fp32_path), str(int8_path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax,
                    reduce_range=False)


# ---------------------------------------------------------------------------------------------
# TF.js layers model


def same_padding(size, k, s, d):
    """TF's 'same' padding (before, after) along one axis."""
    eff = d * (k - 1) + 1
    out = -(-size // s)
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def build_tfjs(graph, tensor):
    sh = shapes(graph)
    layers, weights, blobs = [], [], []
    keras = {}  # export tensor -> keras layer name
    used = set()

    def lname(s):
        base = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in s)
        k, i = base, 1
        while k in used:
            i += 1
            k = f"{base}_{i}"
        used.add(k)
        return k

    def add(cls, name, config, inbound, params=()):
        cfg = {"name": name, "trainable": False, "dtype": "float32", **config}
        layers.append({"class_name": cls, "config": cfg, "name": name,
                       "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []})
        for suffix, arr in params:
            arr = np.ascontiguousarray(arr, dtype=np.float32)
            weights.append({"name": f"{name}/{suffix}", "shape": list(arr.shape), "dtype": "float32"})
            blobs.append(arr.astype("<f4").tobytes())
        return name

    def padding(name, x, xs, kernel, stride, dilation, pad):
        """'same'/'valid' if TF's rule gives the export's padding, else a ZeroPadding2D in front."""
        t, l, b, r = pad
        if (t, l, b, r) == (0, 0, 0, 0):
            return x, "valid"
        if (same_padding(xs[0], kernel[0], stride[0], dilation[0]) == (t, b)
                and same_padding(xs[1], kernel[1], stride[1], dilation[1]) == (l, r)):
            return x, "same"
        if name is None:
            return None, None
        z = add("ZeroPadding2D", lname(f"{name}.pad"), {"padding": [[t, b], [l, r]], "data_format": "channels_last"}, [x])
        return z, "valid"

    h, w, c = sh["input"]
    keras["input"] = add("InputLayer", lname("input"), {"batch_input_shape": [None, h, w, c], "sparse": False}, [])
    zeros = {"class_name": "Zeros", "config": {}}
    for n in graph["nodes"]:
        op, out = n["op"], n["name"]
        x, xs = keras[n["inputs"][0]], sh[n["inputs"][0]]
        if op == "conv2d":
            wt = tensor(n["weight"])  # OHWI
            o, kh, kw, ig = wt.shape
            bias = tensor(n["bias"]) if n.get("bias") else None
            px, mode = padding(out, x, xs, (kh, kw), n["stride"], n["dilation"], n["padding"])
            common = {"kernel_size": [kh, kw], "strides": n["stride"], "padding": mode, "data_format": "channels_last",
                      "dilation_rate": n["dilation"], "activation": "linear", "use_bias": bias is not None,
                      "bias_initializer": zeros, "kernel_regularizer": None, "bias_regularizer": None,
                      "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
            if n["groups"] == 1:
                params = [("kernel", wt.transpose(1, 2, 3, 0))]  # [kh, kw, in, out]
                if bias is not None:
                    params.append(("bias", bias))
                keras[out] = add("Conv2D", lname(out), {**common, "filters": o, "kernel_initializer": zeros}, [px], params)
            elif n["groups"] == xs[2] and ig == 1:
                mult = o // n["groups"]
                # OHWI with I = 1, output channel g * mult + m -> depthwise [kh, kw, in, mult]
                dw = wt.reshape(n["groups"], mult, kh, kw).transpose(2, 3, 0, 1)
                params = [("depthwise_kernel", dw)]
                if bias is not None:
                    params.append(("bias", bias))
                keras[out] = add("DepthwiseConv2D", lname(out), {**common, "depth_multiplier": mult, "depthwise_initializer": zeros,
                                                                 "depthwise_regularizer": None, "depthwise_constraint": None}, [px], params)
            else:
                raise SystemExit(f"{out}: grouped conv (groups {n['groups']}) has no TF.js layer")
        elif op == "clip":
            if n.get("min") not in (0, 0.0):
                raise SystemExit(f"{out}: a clip with min {n.get('min')} has no Lambda-free TF.js layer here")
            keras[out] = add("ReLU", lname(out), {"max_value": n.get("max"), "negative_slope": 0.0, "threshold": 0.0}, [x])
        elif op in ("max_pool", "avg_pool"):
            px, mode = padding(None, x, xs, n["kernel"], n["stride"], (1, 1), n["padding"])
            if mode is None:
                raise SystemExit(f"{out}: pool padding {n['padding']} is neither TF's 'same' nor 'valid'")
            cls = "MaxPooling2D" if op == "max_pool" else "AveragePooling2D"
            keras[out] = add(cls, lname(out), {"pool_size": n["kernel"], "strides": n["stride"], "padding": mode,
                                                "data_format": "channels_last"}, [px])
        elif op == "global_avg_pool":
            keras[out] = add("GlobalAveragePooling2D", lname(out), {"data_format": "channels_last"}, [x])
        elif op == "add":
            keras[out] = add("Add", lname(out), {}, [x, keras[n["inputs"][1]]])
        elif op == "flatten":
            keras[out] = add("Flatten", lname(out), {"data_format": "channels_last"}, [x]) if len(xs) == 3 else x
        elif op == "dense":
            if len(xs) == 3:
                x = add("Flatten", lname(f"{out}.flat"), {"data_format": "channels_last"}, [x])
            wt = tensor(n["weight"])
            params = [("kernel", wt.T)]
            if n.get("bias"):
                params.append(("bias", tensor(n["bias"])))
            keras[out] = add("Dense", lname(out), {"units": wt.shape[0], "activation": "linear", "use_bias": bool(n.get("bias")),
                                                   "kernel_initializer": zeros, "bias_initializer": zeros, "kernel_regularizer": None,
                                                   "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
                                                   "bias_constraint": None}, [x], params)
        elif op == "softmax":
            keras[out] = add("Softmax", lname(out), {"axis": -1}, [x])
        elif op == "affine":
            scale, bias = tensor(n["scale"]), tensor(n["bias"])
            if len(xs) == 3:
                keras[out] = add("DepthwiseConv2D", lname(out), {"kernel_size": [1, 1], "strides": [1, 1], "padding": "valid",
                                                                 "data_format": "channels_last", "dilation_rate": [1, 1],
                                                                 "depth_multiplier": 1, "activation": "linear", "use_bias": True,
                                                                 "depthwise_initializer": zeros, "bias_initializer": zeros},
                                 [x], [("depthwise_kernel", scale.reshape(1, 1, -1, 1)), ("bias", bias)])
            else:
                keras[out] = add("Dense", lname(out), {"units": len(scale), "activation": "linear", "use_bias": True,
                                                       "kernel_initializer": zeros, "bias_initializer": zeros},
                                 [x], [("kernel", np.diag(scale)), ("bias", bias)])
        else:
            raise SystemExit(f"{out}: unknown op {op}")

    topology = {
        "class_name": "Model",
        "config": {"name": graph["model"].replace("-", "_"), "layers": layers,
                   "input_layers": [[keras["input"], 0, 0]], "output_layers": [[keras[graph["output"]], 0, 0]]},
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    }
    model = {
        "format": "layers-model",
        "generatedBy": "anybit scripts/peer_formats.py",
        "convertedBy": None,
        "modelTopology": topology,
        "weightsManifest": [{"paths": ["weights.bin"], "weights": weights}],
    }
    return model, b"".join(blobs)


# ---------------------------------------------------------------------------------------------


def run_onnx(path, inputs, shape):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return [s.run(["output"], {"input": np.asarray(x, dtype=np.float32).reshape(1, *shape)})[0].reshape(-1) for x in inputs]


def cosine(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def convert(folder):
    import onnx

    graph, tensor, ref = load(folder)
    shape = graph["input"]["shape"]
    inputs = ref["inputs"]

    model = build_onnx(graph, tensor)
    fp32 = folder / "model-fp32.onnx"
    onnx.save(model, str(fp32))
    int8 = folder / "model-int8.onnx"
    quantize_int8(fp32, int8, inputs, shape)

    tfjs, blob = build_tfjs(graph, tensor)
    (folder / "tfjs").mkdir(exist_ok=True)
    (folder / "tfjs" / "weights.bin").write_bytes(blob)
    (folder / "tfjs" / "model.json").write_text(json.dumps(tfjs) + "\n")

    tag = f"{folder.name} ({graph['model']}, {graph['bits']} bits)"
    got = run_onnx(fp32, inputs, shape)
    worst, ok = 0.0, True
    for g, r in zip(got, ref["float_outputs"]):
        r = np.asarray(r, dtype=np.float32)
        d = float(np.max(np.abs(g - r)))
        tol = 1e-4 * max(1.0, float(np.max(np.abs(r))))
        worst = max(worst, d / tol)
        ok &= g.shape == r.shape and d <= tol
    print(f"{tag}: model-fp32.onnx vs float_outputs on {len(inputs)} inputs: max |diff| / tolerance {worst:.3f} "
          f"(tolerance 1e-4 * max(1, max |ref|)) -> {'ok' if ok else 'FAIL'}")
    q = run_onnx(int8, inputs, shape)
    top = lambda xs: [int(np.argmax(x)) for x in xs]  # noqa: E731
    tf, tq, ti = top(ref["float_outputs"]), top(ref["quantized_outputs"]), top(q)
    agree_f = sum(a == b for a, b in zip(ti, tf))
    agree_q = sum(a == b for a, b in zip(ti, tq))
    cos = min(cosine(a, b) for a, b in zip(q, ref["float_outputs"]))
    print(f"{tag}: model-int8.onnx top-1 agrees with the float outputs on {agree_f}/{len(q)}, with anybit's "
          f"{graph['bits']}-bit outputs on {agree_q}/{len(q)}; min cosine with the float outputs {cos:.5f}")
    sizes = ", ".join(f"{p.relative_to(folder)} {p.stat().st_size} B" for p in (fp32, int8, folder / "tfjs" / "weights.bin"))
    print(f"{tag}: wrote {sizes}")
    return ok


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) > 1 else 2)
    ok = True
    for d in sys.argv[1:]:
        ok &= convert(Path(d))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
