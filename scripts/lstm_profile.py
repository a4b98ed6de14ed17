"""Where the uk BiLSTM's graph time goes, and whether running it in two stages would pay.

    python scripts/lstm_profile.py --data ../shared/data [--model assets/uk_lstm.onnx] [--rounds 3]

Records the file's session.run inputs while tagging the benchmark's uk texts (ner-uk's raw
validation and test files, as `scripts/benchmark.py` does), then, replaying them with nothing else
running:
1. ONNX Runtime's profiler: the two LSTM nodes against the rest of the graph.
2. The LSTMs' arithmetic (input and recurrent products of both directions over every padded word)
   in GFLOP/s, beside ONNX Runtime's own float MatMul on this CPU at three row counts: how near the
   LSTM kernel runs to what the CPU gives a product.
3. A two-stage form (not shipped): each distinct word's features and both directions' input
   projections computed once (the part of the graph that does not depend on the sentence, cached
   across calls), then the recurrence alone as an ONNX `Loop` over the cached projections (two
   sessions taking turns, so neither spins its workers). It prints the emissions' largest
   difference from the file, the time of each stage and the whole, Python's lookups included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import recorded_pipe
from op_profile import cpu_session, kernel_micros, product_graph
from relean import graph_weights

import tagger
from tagger.runtime import machine

Feed = dict[str, np.ndarray]


def session(model: onnx.ModelProto | str, profile: str | None = None, spin: bool = True) -> ort.InferenceSession:
    """A session with tagger's CPU options (basic graph passes), optionally profiling."""
    return cpu_session(model if isinstance(model, str) else model.SerializeToString(), profile=profile, spin=spin)


def lstm_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    nodes = [n for n in model.graph.node if n.op_type == "LSTM"]
    if len(nodes) != 2 or "forward" not in nodes[0].name or "backward" not in nodes[1].name:
        raise SystemExit("expected a forward and a backward LSTM node (a one-layer uk BiLSTM file)")
    return nodes


def weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The float values the LSTMs and the scores read (INT8 Cast+Mul widenings evaluated as ORT folds them)."""
    values = graph_weights(model)

    def value(name: str) -> np.ndarray:
        if name not in values:
            raise SystemExit(f"cannot evaluate {name}: not a constant of the graph")
        return values[name].astype(np.float32)

    (fwd, bwd), out = lstm_nodes(model), {}
    for tag, node in (("f", fwd), ("b", bwd)):
        out["W" + tag], out["R" + tag], out["B" + tag] = (value(node.input[i])[0] for i in (1, 2, 3))
    scores = next(n for n in model.graph.node if n.op_type == "MatMul" and n.name.startswith("/scores"))
    out["Ws"] = value(scores.input[1])
    add = next(n for n in model.graph.node if n.op_type == "Add" and scores.output[0] in n.input)
    out["bs"] = value(next(i for i in add.input if i != scores.output[0]))
    return out


def profile_split(path: str, feeds: list[Feed]) -> Counter[str]:
    """Kernel seconds of the LSTM nodes and of everything else over `feeds`."""
    with tempfile.TemporaryDirectory() as folder:
        sess = session(path, os.path.join(folder, "p"))
        for feed in feeds:
            sess.run(None, feed)
        micros = kernel_micros(sess)
    return Counter({"LSTM": micros["LSTM"] / 1e6, "rest": (sum(micros.values()) - micros["LSTM"]) / 1e6})


def matmul_ceiling(k: int, n: int, rows: int) -> float:
    """GFLOP/s of ONNX Runtime's float MatMul (rows x k) @ (k x n) on this CPU."""
    sess = cpu_session(product_graph(rows, k, n, integer=False))
    x = np.random.default_rng(1).standard_normal((rows, k)).astype(np.float32)
    sess.run(None, {"x": x})
    calls = max(3, int(2e10 / (2 * rows * k * n)))
    start = time.perf_counter()
    for _ in range(calls):
        sess.run(None, {"x": x})
    return 2 * rows * k * n * calls / (time.perf_counter() - start) / 1e9


def stage_one(path: str, model: onnx.ModelProto, w: dict[str, np.ndarray], hidden: int) -> ort.InferenceSession:
    """The graph up to the LSTMs' input, then both input projections with their biases: [.., 8H]."""
    forward = lstm_nodes(model)[0]
    transpose = next(n for n in model.graph.node if forward.input[0] in n.output)  # (batch, time) -> (time, batch)
    with tempfile.TemporaryDirectory() as folder:
        cut = os.path.join(folder, "features.onnx")
        onnx.utils.extract_model(path, cut, [i.name for i in model.graph.input], [transpose.input[0]])
        part = onnx.load(cut)
    projection = np.concatenate([w["Wf"].T, w["Wb"].T], 1)
    bias = np.concatenate([w["Bf"][:4 * hidden] + w["Bf"][4 * hidden:], w["Bb"][:4 * hidden] + w["Bb"][4 * hidden:]])
    part.graph.initializer.extend([numpy_helper.from_array(projection, "projection"), numpy_helper.from_array(bias, "bias")])
    part.graph.node.extend([helper.make_node("MatMul", [transpose.input[0], "projection"], ["p"]),
                            helper.make_node("Add", ["p", "bias"], ["projections"])])
    del part.graph.output[:]
    part.graph.output.append(helper.make_tensor_value_info("projections", TensorProto.FLOAT, None))
    return session(part, spin=False)


def stage_two(w: dict[str, np.ndarray], hidden: int) -> ort.InferenceSession:
    """Both directions' recurrence in one Loop over projections P (time, 2, batch, 4H); ONNX gate order i, o, f, c."""
    value = helper.make_tensor_value_info
    body = helper.make_graph([
        helper.make_node("Gather", ["P", "t"], ["p"]),
        helper.make_node("MatMul", ["h", "R"], ["hr"]),
        helper.make_node("Add", ["p", "hr"], ["g"]),
        helper.make_node("Split", ["g", "quarters"], ["gi", "go", "gf", "gc"], axis=2),
        helper.make_node("Sigmoid", ["gi"], ["i"]), helper.make_node("Sigmoid", ["go"], ["o"]),
        helper.make_node("Sigmoid", ["gf"], ["f"]), helper.make_node("Tanh", ["gc"], ["cc"]),
        helper.make_node("Mul", ["f", "c"], ["fc"]), helper.make_node("Mul", ["i", "cc"], ["ic"]),
        helper.make_node("Add", ["fc", "ic"], ["c2"]), helper.make_node("Tanh", ["c2"], ["tc"]),
        helper.make_node("Mul", ["o", "tc"], ["h2"]),
        helper.make_node("Identity", ["cond"], ["cond2"]), helper.make_node("Identity", ["h2"], ["y"]),
    ], "step", [value("t", TensorProto.INT64, []), value("cond", TensorProto.BOOL, []),
                value("h", TensorProto.FLOAT, None), value("c", TensorProto.FLOAT, None)],
        [value("cond2", TensorProto.BOOL, []), value("h2", TensorProto.FLOAT, None),
         value("c2", TensorProto.FLOAT, None), value("y", TensorProto.FLOAT, None)])
    consts = {"R": np.stack([w["Rf"].T, w["Rb"].T]), "zero": np.array(0, np.int64), "one": np.array([1], np.int64),
              "three": np.array([3], np.int64), "H": np.array([hidden], np.int64),
              "quarters": np.array([hidden] * 4, np.int64)}
    graph = helper.make_graph([
        helper.make_node("Shape", ["P"], ["shape"]), helper.make_node("Gather", ["shape", "zero"], ["T"], axis=0),
        helper.make_node("Slice", ["shape", "one", "three"], ["db"]),
        helper.make_node("Concat", ["db", "H"], ["state"], axis=0),
        helper.make_node("ConstantOfShape", ["state"], ["h0"], value=numpy_helper.from_array(np.zeros(1, np.float32))),
        helper.make_node("Loop", ["T", "", "h0", "h0"], ["hT", "cT", "Y"], body=body),
    ], "recurrence", [value("P", TensorProto.FLOAT, ["T", 2, "B", 4 * hidden])], [value("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    return session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), spin=False)


class TwoStage:
    """Distinct words' projections cached across calls; the recurrence per call; timings per stage."""

    def __init__(self, first: ort.InferenceSession, second: ort.InferenceSession, w: dict[str, np.ndarray], hidden: int):
        self.first, self.second, self.w, self.hidden = first, second, w, hidden
        self.rows: dict[tuple[Any, ...], int] = {}
        self.table: list[np.ndarray] = []
        self.seconds: Counter[str] = Counter()

    def __call__(self, feed: Feed) -> np.ndarray:
        start = time.perf_counter()
        words, cases, chars, pieces = (feed[k] for k in ("word_ids", "case_ids", "char_ids", "piece_ids"))
        batch, steps = words.shape
        names = ("word_ids", "case_ids", "char_ids", "piece_ids")
        flat = [a.reshape(batch * steps, -1) for a in (words, cases, chars, pieces)]
        index, new = np.empty(batch * steps, np.int64), []
        for j in range(batch * steps):
            key = (int(flat[0][j, 0]), int(flat[1][j, 0]), flat[2][j][flat[2][j] != 0].tobytes(), flat[3][j][flat[3][j] != 0].tobytes())
            row = self.rows.get(key)
            if row is None:
                row = self.rows[key] = len(self.rows)
                new.append(j)
            index[j] = row
        if new:
            picked = np.array(new)
            t0 = time.perf_counter()
            # the distinct words as sentences of one word: a word's features do not depend on its
            # neighbours (the difference printed checks it), and ONNX Runtime splits work by sentence
            one = {name: a[picked].reshape(len(new), 1, *a.shape[1:])[..., 0] if name in names[:2] else a[picked][:, None]
                   for name, a in zip(names, flat)}
            out = self.first.run(None, one)[0][:, 0]
            self.seconds["stage 1 (distinct words)"] += time.perf_counter() - t0
            self.table.extend(out)
        h4 = 4 * self.hidden
        projections = np.stack([self.table[i] for i in index]).reshape(batch, steps, 2, h4)
        lengths = (words != 0).sum(1)[:, None]
        position = np.arange(steps)[None, :]
        reverse = np.where(position < lengths, lengths - 1 - position, position)  # within each sentence's length
        backward = np.take_along_axis(projections[:, :, 1], reverse[:, :, None], 1)
        p = np.ascontiguousarray(np.stack([projections[:, :, 0], backward]).transpose(2, 0, 1, 3))
        t0 = time.perf_counter()
        y = self.second.run(None, {"P": p})[0]
        self.seconds["stage 2 (recurrence, Loop)"] += time.perf_counter() - t0
        states = np.concatenate([y[:, 0].transpose(1, 0, 2),
                                 np.take_along_axis(y[:, 1].transpose(1, 0, 2), reverse[:, :, None], 1)], 2)
        emissions = states @ self.w["Ws"] + self.w["bs"]
        self.seconds["total"] += time.perf_counter() - start
        return emissions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the folder holding ner-uk/")
    parser.add_argument("--model", default="assets/uk_lstm.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = sorted((args.data / "ner-uk" / "raw" / "validation").glob("*.txt")) + sorted((args.data / "ner-uk" / "raw" / "test").glob("*.txt"))
    texts = [f.read_text(encoding="utf-8") for f in files]
    nlp = tagger.load(model=args.model, device="cpu")
    feeds: list[Feed] = [call[1][1] for call in recorded_pipe(nlp, texts)[2]]
    model = onnx.load(args.model)
    hidden = int(next(a.i for a in lstm_nodes(model)[0].attribute if a.name == "hidden_size"))
    w = weights(model)
    inputs = w["Wf"].shape[1]
    m = machine()
    print(f"{args.model}: {len(files)} texts, {len(feeds)} calls; {m['cpu']} ({', '.join(m['flags'])}), "
          f"{m['cores']} cores, onnxruntime {m['onnxruntime']}")

    split = profile_split(args.model, feeds)
    rows = sum(int(f["word_ids"].size) for f in feeds)
    gflop = 2 * rows * (inputs + hidden) * 4 * hidden * 2 / 1e9
    print(f"1. profiler: LSTM nodes {split['LSTM']:.3f} s, the rest {split['rest']:.3f} s "
          f"({split['LSTM'] / (split['LSTM'] + split['rest']):.0%} LSTM)")
    ceilings = ", ".join(f"{r} rows {matmul_ceiling(inputs, 4 * hidden, r):.0f}" for r in (64, 512, 4096))
    print(f"2. LSTM arithmetic: {rows} padded words x 2 directions x ({inputs} + {hidden}) x {4 * hidden}: "
          f"{gflop:.1f} GFLOP in {split['LSTM']:.3f} s = {gflop / split['LSTM']:.0f} GFLOP/s; "
          f"ORT MatMul {inputs}x{4 * hidden} here, GFLOP/s: {ceilings}")

    shipped = session(args.model)
    first, second = stage_one(args.model, model, w, hidden), stage_two(w, hidden)
    check = TwoStage(first, second, w, hidden)
    worst = max(float(np.abs(shipped.run(None, f)[0] - check(f))[f["word_ids"] != 0].max()) for f in feeds)
    steps = sum(int(f["word_ids"].shape[1]) for f in feeds)
    print(f"3. two stages: {len(check.rows)} distinct words of {rows} padded positions, {steps} recurrence steps;"
          f" emissions max |diff| {worst:.1e}")
    for r in range(args.rounds):
        start = time.perf_counter()
        for f in feeds:
            shipped.run(None, f)
        whole = time.perf_counter() - start
        run = TwoStage(first, second, w, hidden)
        for f in feeds:
            run(f)
        stages = ", ".join(f"{k} {v:.3f} s" for k, v in run.seconds.items())
        print(f"   round {r + 1}: the file {whole:.3f} s; two stages, cache cold: {stages} ({whole / run.seconds['total']:.2f}x)")


if __name__ == "__main__":
    main()
