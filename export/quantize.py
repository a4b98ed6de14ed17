"""Dynamic INT8 quantisation of an exported graph, with the test F1 it costs measured, not assumed."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tagger.artifact import load_artifact
from tagger.corpus import load_split
from tagger.evaluate import evaluate
from tagger.predict import Tagger

# Static INT8 (calibrated activations) has been seen to wreck NER models; dynamic quantisation
# stores weights in INT8 and quantises activations per call from their observed range.
MODES = {  # --quantize choice -> (ops whose weights become INT8, what the header says)
    "int8": (["MatMul", "Gather", "LSTM"], "onnxruntime dynamic quantisation, INT8 weights (MatMul, Gather, LSTM), per channel"),
    # For a BiLSTM over a frozen encoder: INT8 matrices in the encoder cost WNUT-17 0.75-1.7 F1 points
    # (it was never trained to tolerate them); stored float16 they cost nothing and half the size.
    "int8-fp16": (["Gather", "LSTM"], "onnxruntime dynamic quantisation, INT8 weights (Gather, LSTM), per channel;"
                  " MatMul weights stored float16 and computed in float32"),
}
FP16_MIN_VALUES = 65_536  # smaller matrices are not worth a Cast node


def widened_graph(path: Path) -> Any:
    """The graph at `path`, loaded (an onnx.ModelProto), with float16 lookup tables (the BiLSTM's piece table) widened to float32.

    The quantiser gives a float16 table a float16 scale, which ONNX Runtime refuses to load;
    from float32 the table quantises to INT8 like any other (and the Cast after it becomes a no-op).
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    gathered = {node.input[0] for node in model.graph.node if node.op_type == "Gather"}
    for init in model.graph.initializer:
        if init.name in gathered and init.data_type == onnx.TensorProto.FLOAT16:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float32), init.name))
    return model


def matrices_to_float16(model: Any) -> int:
    """Store the graph's large float32 MatMul weights as float16, each behind a Cast back to float32.

    ONNX Runtime folds the Casts when the session starts, so inference runs in float32 as before.

    Returns:
        how many matrices were converted
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    weights = {node.input[1] for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in initializers}
    casts = []
    for name in sorted(weights):
        init = initializers[name]
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < FP16_MIN_VALUES:
            continue
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{name}_fp16"))
        casts.append(helper.make_node("Cast", [f"{name}_fp16"], [name], to=onnx.TensorProto.FLOAT, name=f"{name}_cast"))
    nodes = casts + list(model.graph.node)  # a Cast reads only an initializer: first is a valid topological place
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return len(casts)


def test_data(checkpoint: dict[str, Any], data: str | None) -> str | None:
    """Where the test split is: --data, else the local folder the model was trained from, else $TAGGER_DATA / the Hub."""
    if data:
        return data
    source = str(checkpoint.get("data", {}).get("source", ""))
    return source if source and Path(source).is_dir() else None


def quantize_int8(path: Path, header: dict[str, Any], checkpoint: dict[str, Any], data: str | None,
                  mode: str = "int8") -> dict[str, Any]:
    """Replace the float32 graph at `path` by its quantised version (a MODES key); return the test F1 of both.

    The header of the new file records the method and both scores ("test_f1_int8": the quantised graph's).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from export.onnx import set_header

    lang = header["language"]
    gold = load_split(lang, "test", test_data(checkpoint, data))
    before = evaluate(Tagger(load_artifact(path, device="cpu")), gold)
    int8 = path.with_name(path.name + ".int8")
    try:
        logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
        op_types, method = MODES[mode]
        quantize_dynamic(widened_graph(path), str(int8), weight_type=QuantType.QInt8, op_types_to_quantize=op_types,
                         per_channel=True)
        if mode == "int8-fp16":
            graph = onnx.load(str(int8))
            matrices_to_float16(graph)
            onnx.save(graph, str(int8))
        after = evaluate(Tagger(load_artifact(int8, device="cpu")), gold)
        info = {
            "mode": mode,
            "method": method,
            "test_f1_fp32": round(before.micro.f1, 4),
            "test_f1_int8": round(after.micro.f1, 4),
            "test_sentences": len(gold),
            "fp32_bytes": path.stat().st_size,
        }
        set_header(int8, {**header, "quantization": info})
        os.replace(int8, path)
    finally:
        int8.unlink(missing_ok=True)
    return info
