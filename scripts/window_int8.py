"""Dynamic INT8 with one window a call: a uk BERT's integer products, timed against the shipped file.

    python scripts/window_int8.py --data ../shared/data [--model assets/uk_bert.onnx --rounds 3]

ONNX Runtime's dynamic quantiser quantises each product's activation with one scale per call, so in
a batch of windows a word's scores depend on its batch mates; with 7-bit weights (`reduce_range`) no
CPU's kernel saturates. One window a call would make the scale the window's own, fixed by its
document. This writes that form of the file (its INT8 weights widened to float32, then ONNX Runtime's
`quantize_dynamic`, per channel, 7 bits, MatMul and Attention) to a temporary folder and replays the
session.run calls of tagging the benchmark's uk input (ner-uk's raw validation and test texts):
the shipped file as batched by `tag`, the dynamic one batched the same way (batch mates matter there)
and one unpadded window a call, in alternating rounds, with ONNX Runtime's basic graph passes (as
tagger runs it) and all of them (which fuse the quantise-and-product pairs). Prints seconds per
round and the medians' ratios to the shipped file. Reads no scored labels.
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
from onnxruntime.quantization import QuantType, quantize_dynamic

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import inputs, recorded_pipe
from op_profile import cpu_session

import tagger
from tagger.runtime import machine

Feeds = dict[str, np.ndarray]


def dynamic_form(model: Path, folder: Path) -> Path:
    """`model` with its Cast+Mul INT8 weights folded to float32 (ONNX Runtime's basic passes, saved),
    then quantised dynamically with 7-bit per-channel weights."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folder / "float.onnx")
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    out = folder / "dynamic.onnx"
    quantize_dynamic(folder / "float.onnx", out, per_channel=True, reduce_range=True, weight_type=QuantType.QInt8,
                     op_types_to_quantize=["MatMul", "Attention"],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops defeat shape inference
    return out


def one_window_a_call(calls: list[Feeds]) -> list[Feeds]:
    """Each window of each call alone, its padding cut (a window's pieces come first)."""
    return [{name: array[i : i + 1, : int(feeds["attention_mask"][i].sum())] for name, array in feeds.items()}
            for feeds in calls for i in range(feeds["input_ids"].shape[0])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the folder holding ner-uk/")
    parser.add_argument("--model", type=Path, default=Path("assets/uk_bert.onnx"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        _, texts, _ = inputs("uk", args.data, folder)
        _, _, recorded = recorded_pipe(tagger.load(model=args.model, device="cpu", threads=args.threads), texts)
        batched: list[Feeds] = [call_args[1] for _, call_args, _ in recorded]
        single = one_window_a_call(batched)
        dynamic = dynamic_form(args.model, folder)
        basic, every = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        forms: list[tuple[str, ort.InferenceSession, list[Feeds]]] = [
            ("shipped, batched as tag does", cpu_session(args.model, basic, args.threads), batched),
            ("dynamic, batched (batch mates matter)", cpu_session(dynamic, every, args.threads), batched),
            ("dynamic, a window a call, basic passes", cpu_session(dynamic, basic, args.threads), single),
            ("dynamic, a window a call, all passes", cpu_session(dynamic, every, args.threads), single),
        ]
        times: dict[str, list[float]] = {label: [] for label, _, _ in forms}
        for label, s, feeds in forms:
            s.run(None, feeds[0])  # warm
        for r in range(args.rounds):
            for label, s, feeds in forms:
                start = time.perf_counter()
                for f in feeds:
                    s.run(None, f)
                times[label].append(time.perf_counter() - start)
                print(f"round {r + 1}: {label}: {times[label][-1]:.2f} s", flush=True)
    info: dict[str, Any] = machine()
    print(f"\n{args.model}: {len(batched)} calls, {len(single)} windows; {info['cpu']} ({', '.join(info['flags'])}),"
          f" {args.threads} threads, onnxruntime {info['onnxruntime']}")
    base = statistics.median(times[forms[0][0]])
    for label, values in times.items():
        median = statistics.median(values)
        print(f"| {label} | {median:.2f} s | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
