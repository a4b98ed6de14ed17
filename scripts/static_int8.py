"""Static INT8: integer matrix products that are exact on every x86-64 CPU and blind to batch mates (measured, not shipped).

    python scripts/static_int8.py rewrite assets/uk_bert.onnx /tmp/uk_bert_static.onnx --data ../shared/data/ner-uk \
        [--percentile 99.999] [--alpha 0.5 --smooth-only intermediate] [--keep-float REGEX]
    python scripts/static_int8.py fidelity assets/uk_bert.onnx /tmp/uk_bert_static.onnx --data ../shared/data/ner-uk
    python scripts/relean.py measure assets/uk_bert.onnx /tmp/uk_bert_static.onnx --data ../shared/data/ner-uk --f1 /tmp/uk_bert_static.onnx
    python scripts/static_int8.py probe /tmp/native.npz
    qemu-x86_64 -cpu Haswell-v4,-pcid,-x2apic,-tsc-deadline,-invpcid,-spec-ctrl python scripts/static_int8.py probe /tmp/avx2.npz
    python scripts/static_int8.py compare /tmp/native.npz /tmp/avx2.npz

The shipped files compute in float32 over INT8-stored weights (export/portable.py): ONNX Runtime's
dynamic INT8 quantises each activation with one scale per call (a word's scores then depend on its
batch mates) and its U8S8 kernel saturates on CPUs without VNNI. Both are avoidable:
- the activation of each MatMul is quantised to uint8 with a scale and zero point fixed in the file,
  calibrated once on *training* text (never on a scored split): every row is quantised alone;
- the weights are requantised to 7 bits, s8 in [-64, 63] with a scale per output column, so a pair
  of u8 x s8 products stays inside int16 and `vpmaddubsw` cannot saturate (export/portable.py
  PORTABLE_S8); the int32 sums are then exact on AVX2, AVX-512 VNNI and AMX kernels alike.
Each MatMul over a Cast+Mul INT8 weight becomes QuantizeLinear + com.microsoft MatMulIntegerToFloat.
The fused Attention (its packed QKV product) stays float: ONNX Runtime's integer attention, QAttention,
quantises its input per call.

`fidelity` compares files' piece scores on training windows calibration did not read (no scored split);
`probe` / `compare` check one such product bit for bit on two CPUs and in and out of a batch.
`rewrite` calibrates (the range of each MatMul's input over the first `--words` words of the train
split, read as `tag` reads text: document context, the same windows) and writes the file; the
range kept is the `--percentile` of the values on each side (100: the extremes; 0: the range of least
squared error), with `--alpha` SmoothQuant's per-channel scales folded into the weights.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export.portable import PORTABLE_S8  # noqa: E402


def int8_matmuls(model: Any) -> list[tuple[Any, Any, Any]]:
    """(MatMul, Mul, Cast) of every MatMul whose weight is Mul(Cast(int8 initializer), scale)."""
    inits = {t.name for t in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    found = []
    for node in model.graph.node:
        mul = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        cast = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if (mul is not None and cast is not None and cast.op_type == "Cast" and cast.input[0] in inits
                and mul.input[1] in inits):
            found.append((node, mul, cast))
    return found


def train_feeds(model_path: Path, folder: Path, words: int, skip: int = 0) -> list[dict[str, np.ndarray]]:
    """The encoder inputs `tag` would build for the first `words` words of the train split (whole
    documents), or for the `words` after the documents that the first `skip` words end in."""
    from relean import documents  # the first whole documents of a split holding about `words` words

    from tagger.artifact import load_artifact
    from tagger.predict import Tagger

    sentences, runs = documents(folder, "train", skip + words)
    if skip:  # calibration's documents (a prefix: `documents` reads the split in order) are left out
        first = len(documents(folder, "train", skip)[0])
        sentences, runs = sentences[first:], runs[first:]
    total = sum(map(len, sentences))
    tagger = Tagger(load_artifact(model_path, device="cpu", threads=2))
    feeds: list[dict[str, np.ndarray]] = []

    def capture(input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds.append({"input_ids": input_ids, "attention_mask": attention_mask})
        return np.zeros((*input_ids.shape, len(tagger.labels)), np.float32)

    tagger.emit.encoder.emissions(sentences, capture, len(tagger.labels), runs)  # type: ignore[union-attr]
    print(f"{'held out' if skip else 'calibration'}: {total} train words, {len(sentences)} sentences,"
          f" {len(feeds)} calls", file=sys.stderr)
    return feeds


Stats = tuple[np.ndarray, np.ndarray, np.ndarray]  # a sample of a tensor's rows, each channel's lowest, highest value


def calibrate(model: Any, names: list[str], feeds: list[dict[str, np.ndarray]]) -> dict[str, Stats]:
    """For each named tensor over the feeds (padding left out): a sample of its rows, and each channel's
    lowest and highest value."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for name in names:
        probe.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in names}
    lows: dict[str, np.ndarray] = {}
    highs: dict[str, np.ndarray] = {}
    for feed in feeds:
        outputs = session.run(names, feed)
        keep = feed["attention_mask"].astype(bool)
        for name, out in zip(names, outputs):
            x = out[keep] if out.shape[:2] == keep.shape else out.reshape(-1, out.shape[-1])
            lows[name] = np.minimum(lows.get(name, 0.0), x.min(axis=0))
            highs[name] = np.maximum(highs.get(name, 0.0), x.max(axis=0))
            rows[name].append(x[rng.choice(len(x), min(len(x), 200), replace=False)])
    return {name: (np.concatenate(rows[name]), lows[name], highs[name]) for name in names}


def activation_range(stats: Stats, smooth: np.ndarray,
                     percentile: float) -> tuple[float, float]:
    """(low, high) of the tensor divided channel by channel by `smooth`: the extremes (percentile 100),
    a percentile of each side, or (0) the range of least squared error."""
    sample, lows, highs = stats
    low, high = float((lows / smooth).min()), float((highs / smooth).max())
    x = (sample / smooth).reshape(-1)
    if percentile == 0:
        return least_squares_range(x, low, high)
    if percentile < 100:
        low, high = (float(v) for v in np.percentile(x, [100 - percentile, percentile]))
    return min(low, 0.0), max(high, 0.0)


def least_squares_range(x: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """The clipping range, a shrinking of (low, high), whose uint8 round trip of x has the least squared error."""
    best, kept = np.inf, (low, high)
    for shrink in np.linspace(0.05, 1.0, 96):
        lo, hi = low * shrink, high * shrink
        scale = max(hi - lo, 1e-6) / 255.0
        zero = np.clip(round(-lo / scale), 0, 255)
        error = float(np.square((np.clip(np.round(x / scale) + zero, 0, 255) - zero) * scale - x).sum())
        if error < best:
            best, kept = error, (lo, hi)
    return kept


def rewrite(src: Path, dst: Path, folder: Path, words: int, percentile: float, keep_float: list[str],
            alpha: float, bits: int = 7, smooth_only: list[str] | None = None) -> None:
    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    found = [f for f in int8_matmuls(model) if not any(re.search(part, f[0].name) for part in keep_float)]
    stats = calibrate(model, sorted({m.input[0] for m, _, _ in found}), train_feeds(src, folder, words))
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    replaced: dict[str, list[Any]] = {}
    dropped: set[str] = set()
    low7, high7 = PORTABLE_S8 if bits == 7 else (-127, 127)  # 8 bits can saturate without VNNI: a diagnostic only
    for matmul, mul, cast in found:
        weight = numpy_helper.to_array(inits[cast.input[0]]).astype(np.float32)
        weight *= numpy_helper.to_array(inits[mul.input[1]]).astype(np.float32).reshape(1, -1)
        # SmoothQuant (Xiao et al. 2023): channel j of the activation divided by smooth[j] (inside the
        # QuantizeLinear, per axis), row j of the weight multiplied by it; the product is unchanged.
        _, lows, highs = stats[matmul.input[0]]
        smoothed = bool(alpha) and (not smooth_only or any(re.search(part, matmul.name) for part in smooth_only))
        if smoothed:
            reach = np.maximum(np.maximum(-lows, highs), 1e-5)
            smooth = (reach ** alpha / np.maximum(np.abs(weight).max(axis=1), 1e-5) ** (1 - alpha)).astype(np.float32)
            weight *= smooth.reshape(-1, 1)
        else:
            smooth = np.ones(weight.shape[0], np.float32)
        w_scale = np.maximum(np.abs(weight).max(axis=0), 1e-12) / high7
        q = np.clip(np.round(weight / w_scale), low7, high7).astype(np.int8)
        low, high = activation_range(stats[matmul.input[0]], smooth, percentile)
        a_scale = np.float32(max(high - low, 1e-6) / 255.0)
        a_zero = np.uint8(np.clip(round(-low / a_scale), 0, 255))
        name = matmul.name or matmul.output[0]
        graph.initializer.extend([
            numpy_helper.from_array(q, f"{name}_q7"),
            numpy_helper.from_array(w_scale.astype(np.float32), f"{name}_wscale"),
            numpy_helper.from_array(np.zeros(q.shape[1], np.int8), f"{name}_wzero"),
            numpy_helper.from_array(np.array(a_scale, np.float32), f"{name}_ascale"),
            numpy_helper.from_array(np.array(a_zero, np.uint8), f"{name}_azero"),
        ])
        quantize = [matmul.input[0], f"{name}_ascale", f"{name}_azero"]
        if smoothed:  # the activation's scale per channel: the tensor's times each channel's smoothing
            graph.initializer.extend([
                numpy_helper.from_array((a_scale * smooth).astype(np.float32), f"{name}_qscale"),
                numpy_helper.from_array(np.full(smooth.shape, a_zero, np.uint8), f"{name}_qzero"),
            ])
            quantize = [matmul.input[0], f"{name}_qscale", f"{name}_qzero"]
        quantize_node = helper.make_node("QuantizeLinear", quantize, [f"{name}_aq"], name=f"{name}_quantize")
        if smoothed:
            quantize_node.attribute.append(helper.make_attribute("axis", -1))
        replaced[matmul.name] = [
            quantize_node,
            helper.make_node("MatMulIntegerToFloat", [f"{name}_aq", f"{name}_q7", f"{name}_ascale", f"{name}_wscale",
                                                      f"{name}_azero", f"{name}_wzero"], [matmul.output[0]],
                             name=f"{name}_int", domain="com.microsoft"),
        ]
        readers[matmul.input[1]] -= 1
        if readers[matmul.input[1]] == 0:
            dropped |= {mul.name, cast.name}
            for gone in (cast.input[0], mul.input[1]):
                graph.initializer.remove(inits.pop(gone))
    nodes = []
    for node in graph.node:
        if node.name in replaced:
            nodes.extend(replaced[node.name])
        elif node.name not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    print(f"{len(found)} MatMuls -> QuantizeLinear + MatMulIntegerToFloat ({bits}-bit weights, static u8 activations,"
          f" percentile {percentile}, smoothing alpha {alpha}): {dst}")


def fidelity(reference: Path, files: list[Path], folder: Path, words: int) -> None:
    """How far each file's piece scores are from the reference's on training documents that calibration
    did not read (the next `words` words after its): rms difference, and the share of pieces whose best
    label agrees. Reads no scored split, so it can choose between settings."""
    import onnxruntime as ort

    feeds = train_feeds(reference, folder, words, skip=words)

    def scores(path: Path) -> np.ndarray:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        output = session.get_outputs()[0].name
        return np.concatenate([session.run([output], f)[0][f["attention_mask"].astype(bool)] for f in feeds])

    base = scores(reference)
    for path in files:
        got = scores(path)
        print(f"{path}: rms difference {np.sqrt(np.square(got - base).mean()):.4f}, best label agrees on"
              f" {(got.argmax(-1) == base.argmax(-1)).mean():.5f} of {len(base):,} pieces")


def probe(out: Path) -> None:
    """Outputs of one static QuantizeLinear + MatMulIntegerToFloat (384 x 1536, 7-bit weights with extreme
    columns, rows at the range's ends), in a batch and row by row, saved for `compare`."""
    import onnxruntime as ort

    rng = np.random.default_rng(1)
    k, n = 384, 1536
    q = rng.integers(PORTABLE_S8[0], PORTABLE_S8[1] + 1, (k, n)).astype(np.int8)
    q[:, 0], q[:, 1] = PORTABLE_S8[1], PORTABLE_S8[0]  # with rows at 255, every pair of products is at its largest
    w_scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
    a_scale, a_zero = np.float32(0.05), np.uint8(20)  # range [-1.0, 11.75]
    a = (rng.standard_normal((64, k)) * 3).astype(np.float32)
    a[0], a[1] = 20.0, -5.0  # clipped to 255 and 0
    nodes = [helper.make_node("QuantizeLinear", ["A", "as", "az"], ["Aq"]),
             helper.make_node("MatMulIntegerToFloat", ["Aq", "W", "as", "ws", "az", "wz"], ["Y"],
                              domain="com.microsoft")]
    inits = [numpy_helper.from_array(q, "W"), numpy_helper.from_array(w_scale, "ws"),
             numpy_helper.from_array(np.zeros(n, np.int8), "wz"), numpy_helper.from_array(np.array(a_scale), "as"),
             numpy_helper.from_array(np.array(a_zero), "az")]
    graph = helper.make_graph(nodes, "probe", [helper.make_tensor_value_info("A", onnx.TensorProto.FLOAT, ["M", k])],
                              [helper.make_tensor_value_info("Y", onnx.TensorProto.FLOAT, ["M", n])], inits)
    model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                  helper.make_opsetid("com.microsoft", 1)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    aq = np.clip(np.round(a / a_scale) + a_zero, 0, 255)
    exact = ((aq - a_zero).astype(np.float64) * a_scale) @ (q.astype(np.float64) * w_scale)
    batch = session.run(None, {"A": a})[0]
    alone = np.concatenate([session.run(None, {"A": a[i : i + 1]})[0] for i in range(len(a))])
    np.savez(out, batch=batch, alone=alone, exact=exact)
    print(f"max |y - exact| {np.abs(batch - exact).max():.3g} (outputs up to {np.abs(exact).max():,.0f});"
          f" batch vs alone {np.abs(batch - alone).max():.3g}")


def compare(first: Path, second: Path) -> None:
    """How two probes' outputs differ (bit for bit: 0), and whether batching moved a row on either."""
    a, b = np.load(first), np.load(second)
    print(f"{first.name} vs {second.name}: max |diff| {np.abs(a['batch'] - b['batch']).max():.3g};"
          f" batch vs alone {np.abs(a['batch'] - a['alone']).max():.3g} / {np.abs(b['batch'] - b['alone']).max():.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("rewrite")
    one.add_argument("src", type=Path)
    one.add_argument("dst", type=Path)
    one.add_argument("--data", type=Path, required=True, help="corpus folder whose train split calibrates")
    one.add_argument("--words", type=int, default=30000, help="training words read to calibrate")
    one.add_argument("--percentile", type=float, default=100.0, help="0: the range of least squared error")
    one.add_argument("--keep-float", action="append", default=[], 
                     help="leave MatMuls whose name this regular expression finds in float")
    one.add_argument("--alpha", type=float, default=0.0, help="SmoothQuant's migration strength (0: none)")
    one.add_argument("--bits", type=int, choices=[7, 8], default=7, 
                     help="weight bits (8: not portable, to measure what 7 cost)")
    one.add_argument("--smooth-only", action="append", default=[], 
                     help="smooth only MatMuls this regular expression finds")
    fid = commands.add_parser("fidelity")
    fid.add_argument("reference", type=Path)
    fid.add_argument("files", type=Path, nargs="+")
    fid.add_argument("--data", type=Path, required=True, help="corpus folder whose train split is read")
    fid.add_argument("--words", type=int, default=30000, help="the words calibration read (skipped)")
    commands.add_parser("probe").add_argument("out", type=Path)
    two = commands.add_parser("compare")
    two.add_argument("first", type=Path)
    two.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "fidelity":
        fidelity(args.reference, args.files, args.data, args.words)
    elif args.command == "probe":
        probe(args.out)
    elif args.command == "compare":
        compare(args.first, args.second)
    else:
        rewrite(args.src, args.dst, args.data, args.words, args.percentile, args.keep_float, args.alpha, args.bits,
                args.smooth_only)


if __name__ == "__main__":
    main()
