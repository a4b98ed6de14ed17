"""Where a BERT graph's time goes: ONNX Runtime's profiler, summed by operator type.

    python scripts/op_profile.py assets/uk_bert.onnx [--windows 8 --pieces 256 --runs 5 --threads 2]

Runs the graph on full windows of random piece ids (the work of real ones: attention does not look
at the values) and prints each operator type's share of the kernel time and its milliseconds per
call. The profiler's JSON is written to a temporary folder and removed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

BASIC = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # the graph passes tagger runs its CPU sessions with


def cpu_session(model: str | Path | bytes, level: ort.GraphOptimizationLevel = BASIC, threads: int | None = None,
                profile: str | None = None, spin: bool = True) -> ort.InferenceSession:
    """A CPU session of `model` (a path or a serialised graph) with these graph passes, `threads`
    intra-op threads (None: ONNX Runtime's default), profiling into files named from `profile`, and
    worker threads that spin between runs or not (two sessions taking turns: each one's spinning
    workers would hold the cores the other needs)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile:
        options.enable_profiling, options.profile_file_prefix = True, profile
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def product_graph(m: int, k: int, n: int, integer: bool) -> bytes:
    """One product (m, k) x (k, n) with a constant weight: float32 MatMul, or MatMulInteger of u8
    activations by s8 weights in [-64, 63] (7 bits: no pair of products leaves int16, so the AVX2
    kernel cannot saturate and every CPU gives the same integers)."""
    rng = np.random.default_rng(0)
    if integer:
        weight = numpy_helper.from_array(rng.integers(-64, 64, (k, n), dtype=np.int8), "w")
        zero = numpy_helper.from_array(np.array(128, np.uint8), "za")
        node = helper.make_node("MatMulInteger", ["x", "w", "za"], ["y"])
        x_type, y_type, inits = TensorProto.UINT8, TensorProto.INT32, [weight, zero]
    else:
        weight = numpy_helper.from_array(rng.standard_normal((k, n), dtype=np.float32), "w")
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
        x_type, y_type, inits = TensorProto.FLOAT, TensorProto.FLOAT, [weight]
    graph = helper.make_graph([node], "product", [helper.make_tensor_value_info("x", x_type, [m, k])],
                              [helper.make_tensor_value_info("y", y_type, [m, n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()


def kernel_events(session: ort.InferenceSession) -> list[dict[str, Any]]:
    """The node kernel events of a profiling session's runs so far (ends its profile): each has the
    node's `dur` (microseconds) and `args` (`op_name`, and input/output shapes)."""
    with open(session.end_profiling(), encoding="utf-8") as f:
        events = json.load(f)
    return [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]


def kernel_micros(session: ort.InferenceSession) -> Counter[str]:
    """Microseconds of kernel time by operator type in a profiling session's runs so far (ends its profile)."""
    micros: Counter[str] = Counter()
    for event in kernel_events(session):
        micros[event["args"]["op_name"]] += event["dur"]
    return micros


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a BERT tagger's ONNX file (inputs input_ids, attention_mask)")
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--pieces", type=int, default=256)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        session = cpu_session(args.model, ort.GraphOptimizationLevel.ORT_ENABLE_ALL, args.threads,
                              os.path.join(folder, "profile"))
        shape = (args.windows, args.pieces)
        feeds = {"input_ids": np.random.default_rng(0).integers(5, 5000, shape, dtype=np.int64),
                 "attention_mask": np.ones(shape, dtype=np.int64)}
        session.run(None, feeds)  # the first call allocates; the profile counts it too, so runs+1 below
        for _ in range(args.runs):
            session.run(None, feeds)
        micros = kernel_micros(session)
    total = sum(micros.values())
    print(f"{args.model}: {args.windows} x {args.pieces} pieces, {args.threads} threads, onnxruntime {ort.__version__}")
    print("| operator | share | ms per call |")
    print("|---|---:|---:|")
    for op, us in micros.most_common():
        if us / total >= 0.001:
            print(f"| {op} | {us / total:.1%} | {us / (args.runs + 1) / 1000:.1f} |")


if __name__ == "__main__":
    main()
