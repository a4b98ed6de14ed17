"""Dynamic INT8 quantisation of an exported graph, with the test F1 it costs measured, not assumed."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tagger.artifact import load_artifact
from tagger.conll import Sentence
from tagger.corpus import known_corpus, load_split
from tagger.errors import TaggerError
from tagger.evaluation import evaluate
from tagger.export.fourbit import METHOD as FOUR_BIT
from tagger.export.fourbit import store_4bit
from tagger.export.header import set_header
from tagger.export.portable import float_compute, gathered_tables, int8_weights, plain_session_products, saturation_risks
from tagger.header import BertHeader, Header, Quantization
from tagger.predict import Tagger
from tagger.runtime import machine

if TYPE_CHECKING:  # a type only: quantising needs no torch
    from tagger.train.checkpoint import Checkpoint

# Static INT8 (calibrated activations) has been seen to wreck NER models. Weights are stored INT8
# (per channel) by onnxruntime's dynamic quantiser, then every integer product it writes is turned
# into a float one over the same weights (export/portable.py): its U8S8 kernels saturate on CPUs
# without VNNI, and its per-call activation scale made a word's tags depend on its batch mates.
PORTABLE = "computed in float32 over the INT8 weights: no integer products, the same results on every CPU and batch"
MODES = {  # --quantize choice -> (ops whose weights become INT8, what the header says)
    "int8": (["MatMul", "Gather", "LSTM"], f"INT8 weights (MatMul, Gather, LSTM), per channel, {PORTABLE}"),
    # For a BiLSTM over a frozen encoder: INT8 matrices in the encoder cost WNUT-17 0.75-1.7 F1 points
    # (it was never trained to tolerate them); stored float16 they cost nothing and half the size.
    "int8-fp16": (["Gather", "LSTM"], f"INT8 weights (Gather, LSTM), per channel, {PORTABLE};"
                  " MatMul weights stored float16 and computed in float32"),
}
# A BERT graph fused by ONNX Runtime (export/fusion.py): its weights are stored INT8 directly
# (export/portable.py: int8_weights), in the same Cast+Mul form; quantize_dynamic is not used.
FUSED_MODES = {
    "int8": (["MatMul", "Attention", "EmbedLayerNormalization"],
             "INT8 weights (MatMul, Attention's packed QKV, EmbedLayerNormalization's tables), symmetric per channel,"
             f" {PORTABLE}; fused BERT graph; no activation is quantised, so no activation is smoothed"),
    "int8-fp16": (["EmbedLayerNormalization"],
                  f"INT8 embedding tables, per row, {PORTABLE}; MatMul and Attention weights stored float16 and"
                  " computed in float32; fused BERT graph"),
}
# export/portable.py gathered_tables: what the header adds for a word table widened after its lookup.
GATHERED = "the word table held INT8 in memory, each call's rows widened after the lookup"
FP16_MIN_VALUES = 65_536  # smaller matrices are not worth a Cast node
# SmoothQuant (Xiao et al., 2023) on BERT's feed-forward output projection: its input (the GELU
# output) has a few channels up to 40x the median, and dynamic INT8 quantised the activation per
# tensor, so those channels set the step for all. Scaling channel j of the input by 1/s_j and row j
# of the weight by s_j leaves the float product unchanged and moves the outliers into the weights,
# which are quantised per channel. Alpha (how much moves) was picked on one uk model's validation F1
# among 0.5, 0.7, 0.85 (0.8187, 0.8207, 0.8223; unsmoothed 0.8151). Since activations are no longer
# quantised (PORTABLE), export does not smooth: it would only coarsen the weights' steps. The
# step stays for scripts/smoothing.py, which measures it on unfused graphs; a fused graph is never smoothed.
SMOOTH_ALPHA = 0.85
CALIBRATION_SENTENCES = 500  # validation sentences whose activations set each channel's range


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
    """Store the large float32 MatMul (and fused Attention) weights as float16, each behind a Cast to float32.

    ONNX Runtime folds the Casts when the session starts, so inference runs in float32 as before.

    Returns:
        how many matrices were converted
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    initializers = {init.name: init for init in model.graph.initializer}
    weights = {node.input[1] for node in model.graph.node
               if node.op_type in ("MatMul", "Attention") and node.input[1] in initializers}
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


def ffn_down_matmuls(model: Any) -> list[Any]:
    """The feed-forward output projections of an exported BERT graph (`encoder.layer.N.output.dense`)."""
    weights = {init.name for init in model.graph.initializer}
    return [node for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights
            and "/output/dense/" in node.name and "/attention/" not in node.name]


def activation_absmax(model: Any, header: BertHeader, sentences: Sequence[Sequence[str]],
                      tensors: list[str]) -> dict[str, Any]:
    """Per-channel max |x| of each named graph tensor over the real (unpadded) pieces of `sentences`."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import helper

    from tagger.subwords import SubwordEncoder

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in tensors)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    output = str(header["output"])
    absmax: dict[str, Any] = {name: 0.0 for name in tensors}

    def run(input_ids: Any, attention_mask: Any) -> Any:
        scores, *values = session.run([output, *tensors], {"input_ids": input_ids, "attention_mask": attention_mask})
        real = attention_mask.astype(bool)
        for name, value in zip(tensors, values):
            absmax[name] = np.maximum(absmax[name], np.abs(value[real]).max(axis=0))
        return scores

    SubwordEncoder.from_json(header["subwords"]).emissions(sentences, run, len(header["labels"]))
    return absmax


def smooth_ffn_inputs(model: Any, header: BertHeader, sentences: Sequence[Sequence[str]],
                      alpha: float = SMOOTH_ALPHA) -> int:
    """Move the activation outliers of each FFN output projection into its weight (see SMOOTH_ALPHA).

    Inserts a Mul by 1/s before each such MatMul and scales the weight's rows by s, with
    s_j = max|x_j|^alpha / max|w_j|^(1 - alpha) calibrated on `sentences`; float outputs are unchanged.

    Returns:
        how many projections were smoothed
    """
    import numpy as np
    from onnx import helper, numpy_helper

    matmuls = ffn_down_matmuls(model)
    if not matmuls or not sentences:
        return 0
    absmax = activation_absmax(model, header, sentences, [node.input[0] for node in matmuls])
    initializers = {init.name: init for init in model.graph.initializer}
    tiny = np.float32(1e-5)  # a channel that never fired (or a zero row) keeps a finite scale
    muls = {}
    for node in matmuls:
        weight = numpy_helper.to_array(initializers[node.input[1]])
        s = np.maximum(absmax[node.input[0]], tiny) ** alpha / np.maximum(np.abs(weight).max(axis=1), tiny) ** (1 - alpha)
        initializers[node.input[1]].CopyFrom(numpy_helper.from_array((weight * s[:, None]).astype(np.float32), node.input[1]))
        inverse = f"{node.name}_smooth_inverse"
        model.graph.initializer.append(numpy_helper.from_array((1 / s).astype(np.float32), inverse))
        smoothed = f"{node.input[0]}_smoothed"
        muls[node.name] = helper.make_node("Mul", [node.input[0], inverse], [smoothed], name=f"{node.name}_smooth")
        node.input[0] = smoothed
    nodes = [n for node in model.graph.node for n in ([muls[node.name]] if node.name in muls else []) + [node]]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return len(muls)


def test_data(recorded: Mapping[str, Any], data: str | None) -> str | None:
    """Where the test split is: --data, else the local folder the model was trained from (`recorded`:
    a checkpoint's or header's data record), else $TAGGER_DATA / the Hub."""
    if data:
        return data
    source = str(recorded.get("source", ""))
    return source if source and Path(source).is_dir() else None


def test_gold(recorded: Mapping[str, Any], lang: str, data: str | None) -> list[Sentence]:
    """The test split of the corpus a model was trained on (`recorded`: a checkpoint's or header's data
    record; a 13-type model's is ner-uk-2.0 even where `data` holds ner-uk/ beside it), read from
    `test_data`'s place."""
    return load_split(lang, "test", test_data(recorded, data), known_corpus(recorded.get("corpus"), lang))


def write_quantized(path: Path, out: Path, mode: str, header: Header,
                    calibration: Sequence[Sequence[str]] = (), alpha: float = SMOOTH_ALPHA) -> str:
    """Write the graph at `path` quantised by `mode` (a MODES key) to `out`, without a header.

    Weights that are 4-bit values (a frozen e5 encoder's) are first stored as such (export/fourbit.py).
    Then a BERT graph fused by export/fusion.py gets its weights stored INT8 directly (FUSED_MODES);
    any other goes through `dynamic_int8`. With calibration sentences, an unfused BERT graph's FFN
    inputs are smoothed first (see SMOOTH_ALPHA).

    Returns:
        the method, as the header states it
    """
    import onnx

    graph = widened_graph(path)
    four_bit = store_4bit(graph)
    if any(node.op_type == "Attention" for node in graph.graph.node):
        op_types, method = FUSED_MODES[mode]
        int8_weights(graph, op_types)
        if gathered_tables(graph):
            method += f"; {GATHERED}"
    else:
        graph, method = dynamic_int8(graph, out, mode, header, calibration, alpha)
    if mode == "int8-fp16":
        matrices_to_float16(graph)
    check_portable(graph, out)
    onnx.save(graph, str(out))
    return f"{method}; {FOUR_BIT}" if four_bit else method


def dynamic_int8(graph: Any, out: Path, mode: str, header: Header, calibration: Sequence[Sequence[str]],
                 alpha: float) -> tuple[Any, str]:
    """`graph` through ONNX Runtime's dynamic quantiser (via `out`), its integer products made float.

    Returns:
        the quantised graph (an onnx.ModelProto) and the method, as the header states it
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice on every call
    op_types, method = MODES[mode]
    if header["arch"] == "bert" and "MatMul" in op_types and smooth_ffn_inputs(graph, header, calibration, alpha):
        method += (f"; FFN output projections smoothed (SmoothQuant, alpha {alpha}, absmax over"
                   f" {len(calibration)} validation sentences)")
    quantize_dynamic(graph, str(out), weight_type=QuantType.QInt8, op_types_to_quantize=op_types, per_channel=True)
    graph = onnx.load(str(out))
    float_compute(graph)
    return graph, method


def check_portable(graph: Any, path: Path) -> None:
    """Refuse a graph with an integer product that a CPU without VNNI could compute differently, in
    tagger's sessions or in a plain ONNX Runtime session that rewrites it."""
    risks = saturation_risks(graph)
    if risks:
        raise TaggerError(f"{path}: {len(risks)} integer products may saturate on CPUs without VNNI"
                          f" ({risks[0]}); this is a bug in the quantiser, please report it")
    products = plain_session_products(graph)
    if products:
        raise TaggerError(f"{path}: a plain ONNX Runtime session turns {len(products)} products into integer ones"
                          f" ({products[0]}), which may differ between CPUs; this is a bug in the quantiser, please report it")


def calibration_sentences(validation: Sequence[Sentence]) -> list[list[str]]:
    """The words of the validation sentences whose activations set the smoothing scales."""
    return [list(s.words) for s in validation[:CALIBRATION_SENTENCES]]


def quantize_int8(path: Path, header: Header, checkpoint: Checkpoint, data: str | None,
                  mode: str = "int8") -> Quantization:
    """Replace the float32 graph at `path` by its quantised version (a MODES key); return the test F1 of both.

    The header of the new file records the method and both scores ("test_f1_int8": the quantised graph's).
    """
    gold = test_gold(checkpoint.get("data", {}), header["language"], data)
    before = evaluate(Tagger(load_artifact(path, device="cpu")), gold)
    int8 = path.with_name(path.name + ".int8")
    try:
        method = write_quantized(path, int8, mode, header)  # no smoothing: see SMOOTH_ALPHA
        after = evaluate(Tagger(load_artifact(int8, device="cpu")), gold)
        info: Quantization = {
            "mode": mode,
            "method": method,
            "test_f1_fp32": round(before.micro.f1, 4),
            "test_f1_int8": round(after.micro.f1, 4),
            "test_sentences": len(gold),
            "fp32_bytes": path.stat().st_size,
            "measured_on": machine(),
        }
        set_header(int8, cast(Header, {**header, "quantization": info}))
        os.replace(int8, path)
    finally:
        int8.unlink(missing_ok=True)
    return info
