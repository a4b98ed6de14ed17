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

import numpy as np
import onnxruntime as ort


def kernel_micros(session: ort.InferenceSession) -> Counter[str]:
    """Microseconds of kernel time by operator type in a profiling session's runs so far (ends its profile)."""
    with open(session.end_profiling(), encoding="utf-8") as f:
        events = json.load(f)
    micros: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
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
        options = ort.SessionOptions()
        options.enable_profiling, options.profile_file_prefix = True, os.path.join(folder, "profile")
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
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
