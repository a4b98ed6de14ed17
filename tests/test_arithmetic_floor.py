"""scripts/arithmetic_floor.py's figures rest on counting each product's multiply-adds from ONNX
Runtime's profiled shapes (the weights, initializers, are absent from the events) and on timing
products that compute what they should."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from arithmetic_floor import profiled_macs
from op_profile import product_graph


def small_graph(path: Path) -> None:
    """A MatMul (2, 5, 8) x (8, 3), a bidirectional LSTM over (4, 2, 6) with 3 units, and a fused
    Attention over (2, 4, 8) with hidden size 8: 240, 1,728 and 2,048 multiply-adds."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape, dtype=np.float32), name) for name, shape in
             [("w", (8, 3)), ("lw", (2, 12, 6)), ("lr", (2, 12, 3)), ("qkv", (8, 24)), ("qkv_bias", (24,))]]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"]),
             helper.make_node("LSTM", ["s", "lw", "lr"], ["h"], direction="bidirectional", hidden_size=3),
             helper.make_node("Attention", ["a", "qkv", "qkv_bias"], ["o"], domain="com.microsoft", num_heads=2)]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "small", [value("x", TensorProto.FLOAT, [2, 5, 8]),
                                               value("s", TensorProto.FLOAT, [4, 2, 6]),
                                               value("a", TensorProto.FLOAT, [2, 4, 8])],
                              [value("y", TensorProto.FLOAT, None), value("h", TensorProto.FLOAT, None),
                               value("o", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                              ir_version=9)
    path.write_bytes(model.SerializeToString())


def test_each_product_is_counted_from_its_profiled_shapes(tmp_path: Path) -> None:
    path = tmp_path / "small.onnx"
    small_graph(path)
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((2, 5, 8), dtype=np.float32), "s": rng.standard_normal((4, 2, 6), dtype=np.float32),
             "a": rng.standard_normal((2, 4, 8), dtype=np.float32)}
    run = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run
    macs, seconds = profiled_macs(path, [(run, (None, feeds), {})] * 3, threads=1)
    assert macs == {"MatMul": 3 * 2 * 5 * 8 * 3,
                    "LSTM": 3 * 4 * 2 * 2 * 4 * 3 * (6 + 3),  # steps x batch x directions x gates x units x (inputs + units)
                    "Attention": 3 * (2 * 4 * 8 * 24 + 2 * 2 * 4 * 4 * 8)}  # QKV, then scores and values
    assert seconds > 0


def test_the_timed_products_compute_the_product() -> None:
    """The integer product is exact (7-bit weights: no CPU's kernel can saturate) and the float one is
    the float product: what is timed is the real work."""
    rng = np.random.default_rng(2)
    for integer in (False, True):
        graph = product_graph(16, 32, 8, integer)
        weight = numpy_helper.to_array(onnx.load_from_string(graph).graph.initializer[0])
        session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        x = rng.integers(0, 256, (16, 32), dtype=np.uint8) if integer else rng.standard_normal((16, 32), dtype=np.float32)
        [y] = session.run(None, {"x": x})
        if integer:
            assert weight.min() >= -64 and weight.max() <= 63
            assert y.dtype == np.int32 and np.array_equal(y, (x.astype(np.int64) - 128) @ weight.astype(np.int64))
        else:
            np.testing.assert_allclose(y, x @ weight, rtol=1e-4, atol=1e-4)
