"""The BERT export is ONNX Runtime's fused graph: one Attention per layer, checked; its INT8 form stays portable."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto

import tagger.export.fusion as fusion
import tagger.export.quantize as quantize
from conftest import WORDS, Trained, assert_clean_error, quiet_export
from tagger.cli import cli
from tagger.export.portable import INTEGER_PRODUCTS, gathered_tables, saturation_risks
from tagger.export.quantize import GATHERED
from tagger.train.checkpoint import load_checkpoint
from tagger.train.models import build_model
from tagger.train.scorers import torch_run

pytestmark = pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning")
LAYERS = 2  # the tiny encoder's (tests/conftest.py: TINY_BERT)


def op_counts(path: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def test_the_exported_bert_is_fused_one_attention_per_layer(exported_bert: Path) -> None:
    ops = op_counts(exported_bert)
    assert ops["Attention"] == LAYERS and ops["BiasGelu"] == LAYERS and ops["EmbedLayerNormalization"] == 1
    assert ops["SkipLayerNormalization"] == 2 * LAYERS  # after attention and after the feed-forward block
    assert not ops & Counter({"Softmax": 1, "IsNaN": 1, "LayerNormalization": 1, "Erf": 1})  # all inside fused kernels


def test_the_lean_copy_scores_as_the_trained_model_and_leaves_it_alone(trained_bert: Trained) -> None:
    model, subwords = build_model(load_checkpoint(trained_bert.checkpoint))
    lean = fusion.lean_copy(model)
    windows, pieces = subwords.windows(WORDS)
    input_ids, attention_mask, _ = subwords.batch_inputs(windows, pieces)  # padded: the mask matters
    assert (attention_mask == 0).any()
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    expected, actual = torch_run(model, inputs), torch_run(lean, inputs)
    real = attention_mask == 1
    np.testing.assert_allclose(actual[real], expected[real], atol=1e-5)
    assert model.encoder.config._attn_implementation == "sdpa"  # training's model keeps SDPA
    assert lean.encoder.config._attn_implementation == fusion.ATTENTION


def test_the_int8_bert_stores_fused_weights_int8_with_no_integer_product(trained_bert: Trained, session_corpus: Path,
                                                                        tmp_path: Path) -> None:
    report = quiet_export(trained_bert.checkpoint, tmp_path / "int8.onnx", quantize="int8", data=str(session_corpus))
    model = onnx.load(str(report.path))
    assert saturation_risks(model) == []
    ops = Counter(node.op_type for node in model.graph.node)
    assert not set(ops) & (set(INTEGER_PRODUCTS) | {"DynamicQuantizeLinear"}) and ops["Attention"] == LAYERS
    producers = {out: node for node in model.graph.node for out in node.output}
    int8 = {init.name for init in model.graph.initializer if init.data_type == TensorProto.INT8}
    for node in model.graph.node:
        weights = {"Attention": [1], "EmbedLayerNormalization": [3]}.get(node.op_type, [])  # QKV; positions
        for index in weights:
            mul = producers[node.input[index]]  # Mul(Cast(int8), scale)
            assert mul.op_type == "Mul" and producers[mul.input[0]].op_type == "Cast", node.name
            assert producers[mul.input[0]].input[0] in int8, node.name
    embed = next(node for node in model.graph.node if node.op_type == "EmbedLayerNormalization")
    rows = producers[producers[embed.input[2]].input[0]]  # Reshape(Mul(Cast(Gather(int8, ids)), scales))
    gather = producers[producers[rows.input[0]].input[0]]
    assert rows.op_type == "Mul" and gather.op_type == "Gather" and gather.input[0] in int8
    q = report.quantized
    assert q is not None and "no activation is quantised" in q["method"] and "fused" in q["method"]
    assert GATHERED in q["method"]


def test_the_word_table_gathered_before_widening_gives_bit_identical_scores(
        trained_bert: Trained, session_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gathered = quiet_export(trained_bert.checkpoint, tmp_path / "gathered.onnx", quantize="int8",
                            data=str(session_corpus)).path
    monkeypatch.setattr(quantize, "gathered_tables", lambda graph: [])  # the whole table widened, as before
    whole = quiet_export(trained_bert.checkpoint, tmp_path / "whole.onnx", quantize="int8", data=str(session_corpus)).path
    assert "word_embeddings.weight" in {init.name.removesuffix("_int8").split("encoder.embeddings.")[-1]
                                        for init in onnx.load(str(whole)).graph.initializer}
    _, pieces_of = build_model(load_checkpoint(trained_bert.checkpoint))
    windows, pieces = pieces_of.windows(WORDS)
    input_ids, attention_mask, _ = pieces_of.batch_inputs(windows, pieces)  # padded
    assert (attention_mask == 0).any()
    for level in (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        outputs = [ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(
            None, {"input_ids": input_ids, "attention_mask": attention_mask}) for path in (whole, gathered)]
        for before, after in zip(*outputs, strict=True):
            np.testing.assert_array_equal(before, after)
    again = onnx.load(str(gathered))
    assert gathered_tables(again) == []  # nothing left to gather


def scaled_by_mul(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  attention_mask: torch.Tensor | None, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers 5's eager attention (scores times the scale): the form ORT fails to fuse."""
    from transformers.models.bert.modeling_bert import eager_attention_forward

    return eager_attention_forward(module, query, key, value, attention_mask, scaling=query.shape[-1] ** -0.5)


def test_export_refuses_a_graph_not_fused_and_writes_nothing(trained_bert: Trained, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fusion, "lean_attention", scaled_by_mul)
    out = tmp_path / "m.onnx"
    with pytest.raises(fusion.FusionError, match=rf"^{out}: export refused: .* 0 Attention nodes for 2 encoder layers"):
        quiet_export(trained_bert.checkpoint, out)
    assert list(tmp_path.iterdir()) == []
    result = CliRunner().invoke(cli, ["export", str(trained_bert.checkpoint), "-o", str(out)])
    assert "0 Attention nodes" in assert_clean_error(result) and not out.exists()
