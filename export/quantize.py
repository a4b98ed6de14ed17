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
METHOD = "onnxruntime dynamic quantisation, INT8 weights (MatMul, Gather, LSTM), per channel"
OP_TYPES = ["MatMul", "Gather", "LSTM"]


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


def test_data(checkpoint: dict[str, Any], data: str | None) -> str | None:
    """Where the test split is: --data, else the local folder the model was trained from, else $TAGGER_DATA / the Hub."""
    if data:
        return data
    source = str(checkpoint.get("data", {}).get("source", ""))
    return source if source and Path(source).is_dir() else None


def quantize_int8(path: Path, header: dict[str, Any], checkpoint: dict[str, Any], data: str | None) -> dict[str, Any]:
    """Replace the float32 graph at `path` by its INT8 version; return the test F1 of both.

    The header of the INT8 file records the method and both scores.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from export.onnx import set_header

    lang = header["language"]
    gold = load_split(lang, "test", test_data(checkpoint, data))
    before = evaluate(Tagger(load_artifact(path, device="cpu")), gold)
    int8 = path.with_name(path.name + ".int8")
    try:
        logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
        quantize_dynamic(widened_graph(path), str(int8), weight_type=QuantType.QInt8, op_types_to_quantize=OP_TYPES,
                         per_channel=True)
        after = evaluate(Tagger(load_artifact(int8, device="cpu")), gold)
        info = {
            "method": METHOD,
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
