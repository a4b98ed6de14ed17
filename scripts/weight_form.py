"""INT8 weights behind Cast+Mul (shipped) or DequantizeLinear: session start and what a plain session makes of them.

    python scripts/weight_form.py assets/uk_bert.onnx [--rounds 5] [--windows 8]

The shipped BERT files store each weight INT8 with a float scale per channel, widened by a Cast and
a Mul that ONNX Runtime folds into a float32 constant when the session starts (export/portable.py).
A single DequantizeLinear (per axis) computes the same products, and ORT folds it faster when its
QDQ passes are off (`session.disable_quant_qdq`). This script writes that form to a temporary
file, then prints, for both forms:
- session start in seconds (tagger's CPU options: basic passes; the DequantizeLinear form with QDQ
  passes off; and the shipped form with constant folding off, what folding costs), median of
  `--rounds`, the order alternating;
- the largest score difference against the shipped form on `--windows` random 256-piece windows,
  under tagger's options and in a plain session (ORT's defaults: every pass);
- the integer products a plain session writes into the graph (export/portable.py
  `plain_session_products`), which `tagger export` refuses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.export.portable import plain_session_products  # noqa: E402


def dequantize_form(model: Any) -> int:
    """Replace each Cast(INT8 initializer) + Mul(scale varying along one axis) by one DequantizeLinear, in place."""
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    casts = {n.output[0]: n for n in graph.node if n.op_type == "Cast" and n.input[0] in inits
             and inits[n.input[0]].data_type == onnx.TensorProto.INT8}
    nodes, changed = [], 0
    for node in graph.node:
        if node.output[0] in casts:
            continue  # dropped below, or put back if its Mul is not rewritten
        cast = casts.get(node.input[0]) if node.op_type == "Mul" else None
        scale = numpy_helper.to_array(inits[node.input[1]]) if cast is not None and node.input[1] in inits else None
        wide = [k for k, n in enumerate(scale.shape) if n > 1] if scale is not None else []
        if cast is None or scale is None or len(wide) != 1:
            nodes.append(node)
            continue
        name = f"{node.input[1]}_axis"
        graph.initializer.append(numpy_helper.from_array(scale.reshape(-1).astype(np.float32), name))
        nodes.append(helper.make_node("DequantizeLinear", [cast.input[0], name], list(node.output),
                                      name=f"{node.name}_dq", axis=wide[0]))
        changed += 1
    used = {name for n in nodes for name in n.input}
    nodes = [casts[name] for name in casts if name in used] + nodes  # Casts a rewritten Mul no longer reads go
    del graph.node[:]
    graph.node.extend(nodes)
    return changed


def session(path: Path, plain: bool, qdq_off: bool, folding: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not plain:  # tagger/runtime.py's CPU options
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if qdq_off:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=None if folding else ["ConstantFolding"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a shipped BERT file (INT8 weights behind Cast+Mul)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--windows", type=int, default=8)
    args = parser.parse_args()
    model = onnx.load(str(args.model))
    with tempfile.TemporaryDirectory() as folder:
        rewritten = Path(folder) / "dequantize_linear.onnx"
        changed = dequantize_form(model)
        onnx.save(model, str(rewritten))
        print(f"{changed} Cast+Mul widenings rewritten as DequantizeLinear")
        forms = {"Cast+Mul (shipped)": (args.model, False), "DequantizeLinear": (rewritten, True)}
        timed = [*forms, "Cast+Mul, not folded"]  # what folding costs (the weights then widen on every call)
        starts: dict[str, list[float]] = {name: [] for name in timed}
        for r in range(args.rounds):
            for name in (timed if r % 2 == 0 else timed[::-1]):
                path, qdq_off = forms.get(name, (args.model, False))
                begin = time.perf_counter()
                session(path, plain=False, qdq_off=qdq_off, folding=name in forms)
                starts[name].append(time.perf_counter() - begin)
        rng = np.random.default_rng(0)
        feed = {"input_ids": rng.integers(2, 8000, (args.windows, 256)).astype(np.int64),
                "attention_mask": np.ones((args.windows, 256), np.int64)}
        for plain in (False, True):
            scores = {name: session(path, plain, qdq_off and not plain).run(None, feed)[0]
                      for name, (path, qdq_off) in forms.items()}
            ref, new = scores.values()
            label = "plain session (ORT defaults)" if plain else "tagger's options"
            print(f"{label}: max |score diff| {float(np.abs(new - ref).max()):.3g},"
                  f" argmax labels changed {float((new.argmax(-1) != ref.argmax(-1)).mean()):.4%}")
        for name, (path, _) in forms.items():
            found = plain_session_products(path)
            print(f"{name}: session start {statistics.median(starts[name]):.3f} s (median of {args.rounds});"
                  f" integer products in a plain session: {len(found)}{f' ({found[0]})' if found else ''}")
        print(f"Cast+Mul, not folded: session start {statistics.median(starts[timed[-1]]):.3f} s")


if __name__ == "__main__":
    main()
