"""INT8-stored weights computed in float: the same tags on every x86-64 CPU and in every batch.

ONNX Runtime's dynamic quantisation (`quantize_dynamic`) writes two kinds of integer product:
`MatMulInteger` after a `DynamicQuantizeLinear` of the activation, and `DynamicQuantizeLSTM`.
Both defeat what a user relies on:
- U8 activations x S8 weights: on x86 CPUs without VNNI the kernel adds two u8 x s8 products
  into a saturating int16 (`vpmaddubsw`), so an AVX2 laptop computes other numbers than an
  AVX-512 VNNI server from the same file (measured: uk_bert test F1 0.8441 there, 0.8318 here).
- The activation's scale is one per tensor, i.e. one per ONNX Runtime call, so a word's scores
  depend on which other windows share its batch.

`float_compute` rewrites each into a float product over the same INT8 weights: the weight is
stored as before (INT8 plus one float scale per output channel) and widened by a Cast and a Mul
that ONNX Runtime folds into a float32 constant when the session starts. No integer product is
left, so no kernel can saturate, and every row of a float MatMul is computed alone. The file
stays INT8-sized; what is given up is the integer kernels' speed (measured in docs/).

A BERT graph fused by ONNX Runtime (export/fusion.py) is not quantised by `quantize_dynamic` at all
(it cannot type the fused ops' outputs, and would write QAttention, an integer product):
`int8_weights` stores its weights INT8 in that same Cast+Mul form directly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

# Ops that multiply integers: their weight operand decides whether u8 x s8 pairs can leave int16.
INTEGER_PRODUCTS = {"MatMulInteger": 1, "DynamicQuantizeMatMul": 1, "MatMulIntegerToFloat": 1,
                    "DynamicQuantizeLSTM": 1, "QLinearMatMul": 3, "QLinearConv": 3, "ConvInteger": 1,
                    "QAttention": 1, "QGemm": 3}  # op -> index of its weight input
# Where each op reads its weights: op -> (input indices, axis along which one scale per channel is kept).
# A matrix product's weight is (in, out): a scale per output column; a lookup table: a scale per row.
WEIGHT_INPUTS = {"MatMul": ((1,), 1), "Attention": ((1,), 1), "EmbedLayerNormalization": ((2, 3, 4), 0),
                 "Gather": ((0,), 0)}
# MatMulNBits' accuracy level 4 computes in int8: each block of activations quantised per call.
INT8_COMPUTE_LEVEL = 4
# A u8 activation (<= 255) times s8 weights in [-64, 63]: a pair of products sums to at most
# 2 x 255 x 64 = 32,640 in magnitude, inside int16, so vpmaddubsw cannot saturate.
PORTABLE_S8 = (-64, 63)


def _consumers(nodes: Iterable[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for node in nodes:
        for name in node.input:
            found.setdefault(name, []).append(node)
    return found


def _widen(model: Any, quantized: np.ndarray, scale: np.ndarray, name: str) -> tuple[list[Any], str]:
    """Nodes that turn the INT8 `quantized` times `scale` (broadcast) into a float32 tensor named `name`."""
    import onnx
    from onnx import helper, numpy_helper

    model.graph.initializer.append(numpy_helper.from_array(quantized.astype(np.int8), f"{name}_int8"))
    model.graph.initializer.append(numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale"))
    return [
        helper.make_node("Cast", [f"{name}_int8"], [f"{name}_wide"], to=onnx.TensorProto.FLOAT, name=f"{name}_cast"),
        helper.make_node("Mul", [f"{name}_wide", f"{name}_scale"], [name], name=f"{name}_mul"),
    ], name


def int8_weights(model: Any, op_types: Collection[str]) -> list[str]:
    """Store every float32 matrix that `op_types` read as weights as symmetric INT8 per channel behind a Cast+Mul.

    In place on an onnx.ModelProto; see WEIGHT_INPUTS for which inputs and which channels.
    ONNX Runtime folds each Cast+Mul into a float32 constant when the session starts, so the
    fused kernels see constants as before (Attention pre-packs its weights).

    Returns:
        the names of the weights stored INT8
    """
    import onnx
    from onnx import numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    axes: dict[str, int] = {}  # weight name -> its channel axis
    for node in model.graph.node:
        if node.op_type not in op_types or node.op_type not in WEIGHT_INPUTS:
            continue
        indices, axis = WEIGHT_INPUTS[node.op_type]
        for index in indices:
            name = node.input[index] if len(node.input) > index else ""
            init = inits.get(name)
            if init is not None and init.data_type == onnx.TensorProto.FLOAT and len(init.dims) == 2:
                axes.setdefault(name, axis)
    widenings = []
    for name, axis in axes.items():
        value = numpy_helper.to_array(inits[name])
        absmax = np.abs(value).max(axis=1 - axis, keepdims=True)  # (1, out) or (rows, 1)
        scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
        model.graph.initializer.remove(inits[name])
        nodes, _ = _widen(model, np.clip(np.round(value / scale), -127, 127), scale, name)
        widenings += nodes
    nodes = widenings + list(model.graph.node)  # a widening reads initializers only: first is a valid place
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return list(axes)


def gathered_tables(model: Any) -> list[str]:
    """Keep INT8 lookup tables INT8 in memory: look their rows up first, then widen only those.

    In place on an onnx.ModelProto: every `Gather` (axis 0) and every fused BERT
    `EmbedLayerNormalization` whose table `int8_weights` widened whole (Cast+Mul of initializers).
    ONNX Runtime folds a whole widened table into a float32 constant when the session starts: for
    e5-small's 33k x 384 word table that is 49 MB written in every new process and 35 MB held for the
    session's life (docs/performance.md). Here each call gathers its rows' INT8 values and scales and
    widens them with the same Cast and Mul, so every value, and every score, is bit for bit what the
    whole table gave. The fused kernel is handed a table of just those rows, read through ids 0..n-1
    in the shape of the input ids.

    Returns:
        the names of the tables now gathered before widening
    """
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}

    def widened(name: str) -> tuple[str, str] | None:
        """(INT8 initializer, scale initializer) if `name` is a whole table's Cast+Mul, else None."""
        mul = producers.get(name)
        cast = producers.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in inits or mul.input[1] not in inits:
            return None
        return cast.input[0], mul.input[1]

    def rows(table: str, scale: str, ids: str, p: str, out: str) -> list[Any]:
        return [helper.make_node("Gather", [table, ids], [f"{p}_int8"], name=f"{p}_gather"),
                helper.make_node("Gather", [scale, ids], [f"{p}_scale"], name=f"{p}_gather_scale"),
                helper.make_node("Cast", [f"{p}_int8"], [f"{p}_wide"], to=TensorProto.FLOAT, name=f"{p}_cast"),
                helper.make_node("Mul", [f"{p}_wide", f"{p}_scale"], [out], name=f"{p}_mul")]

    replaced: dict[int, list[Any]] = {}  # id() of a node -> the nodes in its place
    tables = []
    for index, node in enumerate(graph.node):
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if node.op_type == "Gather" and axis == 0 and (found := widened(node.input[0])):
            replaced[id(node)] = rows(*found, node.input[1], f"{node.name or f'gather_{index}'}_rows", node.output[0])
        elif node.op_type == "EmbedLayerNormalization" and (found := widened(node.input[2])):
            ids, p = node.input[0], f"{node.name}_rows"
            graph.initializer.extend([
                numpy_helper.from_array(np.array([-1, inits[found[0]].dims[1]], np.int64), f"{p}_table_shape"),
                numpy_helper.from_array(np.array(0, np.int32), f"{p}_zero"),
                numpy_helper.from_array(np.array(1, np.int32), f"{p}_one"),
            ])
            replaced[id(node)] = [
                *rows(*found, ids, p, f"{p}_values"),
                helper.make_node("Reshape", [f"{p}_values", f"{p}_table_shape"], [f"{p}_table"], name=f"{p}_table"),
                # ids 0..n-1 in the shape of the input ids: row i of the small table is piece i's.
                helper.make_node("Shape", [ids], [f"{p}_ids_shape"], name=f"{p}_ids_shape"),
                helper.make_node("ReduceProd", [f"{p}_ids_shape"], [f"{p}_count_1"], keepdims=1, name=f"{p}_count_1"),
                helper.make_node("Squeeze", [f"{p}_count_1"], [f"{p}_count_64"], name=f"{p}_count_64"),
                helper.make_node("Cast", [f"{p}_count_64"], [f"{p}_count"], to=TensorProto.INT32, name=f"{p}_count"),
                helper.make_node("Range", [f"{p}_zero", f"{p}_count", f"{p}_one"], [f"{p}_flat_ids"], name=f"{p}_range"),
                helper.make_node("Reshape", [f"{p}_flat_ids", f"{p}_ids_shape"], [f"{p}_ids"], name=f"{p}_ids"),
                node,
            ]
            node.input[0], node.input[2] = f"{p}_ids", f"{p}_table"
        else:
            continue
        tables.append(found[0].removesuffix("_int8"))
    nodes = [new for node in graph.node for new in replaced.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    prune(model)  # the whole tables' Cast+Mul
    return tables


def float_compute(model: Any) -> int:
    """Rewrite every integer product that `quantize_dynamic` wrote into a float one over the same INT8 weights.

    In place on an onnx.ModelProto; the float result of each rewritten product is what the INT8
    weights times float activations give, with no activation quantisation at all.

    Returns:
        how many products were rewritten
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers = _consumers(graph.node)
    drop: set[int] = set()  # id() of nodes replaced
    added: dict[int, list[Any]] = {}  # id() of a replaced node -> nodes in its place
    rewritten = 0
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            quantize = producers[node.input[0]]
            cast = consumers[node.output[0]][0]
            rescale = consumers[cast.output[0]][0]  # Mul(cast, activation scale x weight scale)
            scales = producers[rescale.input[1]]  # Mul(activation scale, weight scale)
            weight = numpy_helper.to_array(inits[node.input[1]])
            zero = numpy_helper.to_array(inits[node.input[3]]) if len(node.input) > 3 and node.input[3] else 0
            if quantize.op_type != "DynamicQuantizeLinear" or np.any(zero != 0):
                raise ValueError(f"{node.name}: not the symmetric dynamic pattern quantize_dynamic writes")
            w_scale = numpy_helper.to_array(inits[scales.input[1]])
            widen, w = _widen(model, weight, w_scale.reshape(1, -1), f"{node.input[1]}_float")
            matmul = helper.make_node("MatMul", [quantize.input[0], w], [rescale.output[0]], name=f"{node.name}_float")
            added[id(node)] = [*widen, matmul]
            drop.update({id(cast), id(rescale), id(scales)})
        elif node.op_type == "DynamicQuantizeLSTM":
            # Its W / R are (directions, input, 4 x hidden) with one scale per output column; the
            # LSTM op wants (directions, 4 x hidden, input).
            x, w, r, b, lens, h0, c0, p, w_scale, w_zero, r_scale, r_zero = (list(node.input) + [""] * 12)[:12]
            if any(np.any(numpy_helper.to_array(inits[z]) != 0) for z in (w_zero, r_zero)):
                raise ValueError(f"{node.name}: not the symmetric dynamic pattern quantize_dynamic writes")
            nodes = []
            floats = []
            for name, scale in ((w, w_scale), (r, r_scale)):
                q = numpy_helper.to_array(inits[name]).transpose(0, 2, 1)
                s = numpy_helper.to_array(inits[scale])[:, :, None]
                widen, out = _widen(model, q, s, f"{name}_float")
                nodes += widen
                floats.append(out)
            lstm = helper.make_node("LSTM", [x, *floats, b, lens, h0, c0, p], list(node.output), name=f"{node.name}_float")
            lstm.attribute.extend(node.attribute)
            added[id(node)] = [*nodes, lstm]
        else:
            continue
        drop.add(id(node))
        rewritten += 1
    nodes = [new for node in graph.node if id(node) not in drop or id(node) in added
             for new in added.get(id(node), [node])]
    del graph.node[:]
    graph.node.extend(nodes)
    prune(model)
    return rewritten


def prune(model: Any) -> None:
    """Drop nodes whose outputs nothing reads (the dynamic quantisers) and initializers no node reads."""
    graph = model.graph
    while True:
        read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [node for node in graph.node if not any(out in read for out in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def saturation_risks(model: Any) -> list[str]:
    """Integer products whose S8 weights leave [-64, 63], where a CPU without VNNI may saturate int16.

    Whatever the CPU runs, a product is safe when its weights are U8 (the U8U8 kernels widen
    first) or S8 within PORTABLE_S8. Returns one line per unsafe node (empty: none).
    """
    from onnx import TensorProto, numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    risks = []
    for node in model.graph.node:
        index = INTEGER_PRODUCTS.get(node.op_type)
        if index is None:
            continue
        name = node.input[index] if len(node.input) > index else ""
        init = inits.get(name)
        if init is None:
            risks.append(f"{node.name} ({node.op_type}): weight {name!r} is not a constant, its range is unknown")
            continue
        if init.data_type == TensorProto.UINT8:
            continue
        values = numpy_helper.to_array(init)
        low, high = int(values.min()), int(values.max())
        if low < PORTABLE_S8[0] or high > PORTABLE_S8[1]:
            risks.append(f"{node.name} ({node.op_type}): S8 weights span [{low}, {high}], outside [-64, 63]")
    return risks


def plain_session_products(model: Any) -> list[str]:
    """Integer products in the graph that a plain ONNX Runtime CPU session (default options, every
    optimisation) makes of `model` (an onnx.ModelProto or a path): what runs for a user who loads
    the file without tagger.

    tagger's own CPU sessions run basic passes only (tagger/runtime.py), but the file must stay
    portable in anyone's session. Such a session rewrites some float graphs into integer products:
    a DequantizeLinear of INT8 weights before a MatMul becomes MatMulNBits computing in int8
    (accuracy level 4), the activations quantised per call (measured on uk_bert in that form:
    scores off by up to 0.25, docs/performance.md). Returns one line per such node (empty: none).
    """
    import tempfile
    from pathlib import Path

    import onnx
    import onnxruntime as ort

    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.log_severity_level = 3  # ORT warns that an optimised graph is machine-specific: we only read it
        options.optimized_model_filepath = str(Path(folder) / "optimised.onnx")
        ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        optimised = onnx.load(options.optimized_model_filepath, load_external_data=False)
    found = []
    for node in optimised.graph.node:
        level = next((a.i for a in node.attribute if a.name == "accuracy_level"), 0)
        if node.op_type in INTEGER_PRODUCTS or node.op_type.startswith("DynamicQuantize") or (
                node.op_type == "MatMulNBits" and level >= INT8_COMPUTE_LEVEL):
            found.append(f"{node.name} ({node.op_type}{f', accuracy level {level}' if level else ''})")
    return found
