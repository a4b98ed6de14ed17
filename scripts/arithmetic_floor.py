"""The multiply-adds each uk graph does over the benchmark's input, against what this CPU's products
can do: the GFLOP/s each of the throughput issue's words/s targets asks of the products alone.

    python scripts/arithmetic_floor.py --data ../shared/data [--threads 2]

For the uk BERT and BiLSTM (the files of `--arch bert`, `--arch lstm`, and the default, which runs
both): `Pipeline.pipe` over the benchmark's uk input (ner-uk's raw validation and test texts) with
every session.run recorded and timed, then the recorded calls replayed once on a profiling session of
the same file, whose node events give each product's shapes (MatMul, MatMulNBits, the fused
Attention with its QKV product and its score/value products, LSTM). Padded positions count: the
kernels compute them. Beside it, ONNX Runtime's float32 MatMul timed on this CPU at the BERT's
product shapes, and its exact integer product (u8 x s8 with 7-bit weights: what an INT8 graph that
gives the same results on every CPU could use), as the rates a faster graph of the same arithmetic
would run at. A target is out of reach of a graph doing this arithmetic when the GFLOP/s it needs
exceed the rate this CPU's best kernel reaches.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import Call, inputs, recorded_pipe
from op_profile import cpu_session, kernel_events, product_graph

import tagger
from tagger.runtime import machine
from tagger.text import tokenize

# The throughput issue's targets on its 2-core AVX2 CPU: words/s end to end (start-up included).
TARGETS = {"bert": 1800, "default": 1500, "lstm": 20000}
SHAPES = [(2048, 384, 1536), (2048, 1536, 384), (2048, 384, 1152)]  # a call's FFN in, out, QKV (8 x 256 pieces)


def node_macs(op: str, ins: list[list[int]], outs: list[list[int]]) -> int:
    """Multiply-adds of one node run from its profiled shapes (0 for what is not a product)."""
    if op in ("MatMul", "MatMulNBits", "FusedMatMul"):
        # The weight is an initializer, absent from the event: its K is the input's last dimension.
        return math.prod(outs[0][:-1]) * ins[0][-1] * outs[0][-1]
    if op == "Attention":  # input (B, S, K), output (B, S, H): the packed QKV product, Q·Kᵀ and scores·V
        (b, s, k), h = ins[0], outs[0][-1]
        return b * s * k * 3 * h + 2 * b * s * s * h
    if op == "LSTM":  # X (S, B, I), Y (S, D, B, H): input and recurrent products of every gate
        (s, b, i), (_, d, _, h) = ins[0], outs[0]
        return s * b * d * 4 * h * (i + h)
    return 0


def profiled_macs(path: Path, calls: list[Call], threads: int) -> tuple[dict[str, int], float]:
    """The recorded calls replayed on a profiling session of `path`: (multiply-adds by operator type,
    kernel seconds of the products)."""
    with tempfile.TemporaryDirectory() as folder:
        session = cpu_session(path, threads=threads, profile=os.path.join(folder, "profile"))  # tagger's passes
        for _, args, kwargs in calls:
            session.run(*args, **kwargs)
        events = kernel_events(session)
    macs: dict[str, int] = {}
    seconds = 0.0
    for event in events:
        a = event["args"]
        shapes = [[next(iter(t.values())) for t in a.get(key, [])] for key in ("input_type_shape", "output_type_shape")]
        n = node_macs(a["op_name"], *shapes)
        if n:
            macs[a["op_name"]] = macs.get(a["op_name"], 0) + n
            seconds += event["dur"] / 1e6
    return macs, seconds


def product_rate(integer: bool, threads: int, rounds: int = 20) -> float:
    """Billions of multiply-adds x 2 a second (GFLOP/s, or GOP/s for integers) of ONNX Runtime's
    product on this CPU: for each shape the best of `rounds` runs, over all shapes together."""
    flop, seconds = 0.0, 0.0
    for m, k, n in SHAPES:
        session = cpu_session(product_graph(m, k, n, integer), ort.GraphOptimizationLevel.ORT_ENABLE_ALL, threads)
        rng = np.random.default_rng(1)
        x = rng.integers(0, 256, (m, k), dtype=np.uint8) if integer else rng.standard_normal((m, k), dtype=np.float32)
        session.run(None, {"x": x})
        best = math.inf
        for _ in range(rounds):
            start = time.perf_counter()
            session.run(None, {"x": x})
            best = min(best, time.perf_counter() - start)
        flop, seconds = flop + 2 * m * k * n, seconds + best
    return flop / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the folder holding ner-uk/")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        _, texts, _ = inputs("uk", args.data, Path(folder))
    words = sum(len(tokenize(text, "uk")) for text in texts)
    rows = {}
    for arch in ("bert", "lstm"):
        nlp = tagger.load("uk", arch=arch, device="cpu", threads=args.threads)
        _, inside, calls = recorded_pipe(nlp, texts)
        macs, kernels = profiled_macs(nlp.artifacts[0].path, calls, args.threads)
        rows[arch] = (macs, inside, kernels)
    float_rate = product_rate(False, args.threads)
    int_rate = product_rate(True, args.threads)

    info = machine()
    print(f"uk, {len(texts)} raw texts, {words:,} words; {info['cpu']} ({', '.join(info['flags'])}), "
          f"{args.threads} threads, onnxruntime {info['onnxruntime']}")
    print(f"ONNX Runtime's products on this CPU at {', '.join('x'.join(map(str, s)) for s in SHAPES)}: "
          f"float32 MatMul {float_rate:.0f} GFLOP/s, u8 x s8 MatMulInteger (7-bit weights) {int_rate:.0f} GOP/s")
    print("| graph | multiply-adds a word | session.run in tag, s | its products, GFLOP/s | target words/s |"
          " the products alone need, GFLOP/s | x float32 MatMul rate | x integer rate |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, archs in (("uk --arch bert", ["bert"]), ("uk --arch lstm", ["lstm"]), ("uk default (both)", ["bert", "lstm"])):
        macs = sum(sum(rows[a][0].values()) for a in archs)
        inside = sum(rows[a][1] for a in archs)
        target = TARGETS["default" if len(archs) > 1 else archs[0]]
        need = 2 * macs / words * target / 1e9
        print(f"| {name} | {macs / words / 1e6:.2f} M | {inside:.2f} | {2 * macs / inside / 1e9:.0f} | {target:,} |"
              f" {need:.0f} | {need / float_rate:.2f} | {need / int_rate:.2f} |")
    for arch, (by_op, _, kernels) in rows.items():
        macs = sum(by_op.values())
        shares = ", ".join(f"{op} {n / macs:.0%}" for op, n in sorted(by_op.items(), key=lambda kv: -kv[1]))
        print(f"{arch}: {macs / 1e12:.2f} T multiply-adds ({shares}); product kernels {kernels:.2f} s profiled")


if __name__ == "__main__":
    main()
