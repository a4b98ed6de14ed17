"""INT8 that every x86-64 CPU computes alike, and entities that do not depend on batch mates.

Neither property can be seen by running on the CPU CI happens to have (a VNNI CPU computes the
saturating U8S8 products exactly), so the graphs are checked for what could differ: an integer
product whose S8 weights leave [-64, 63] (saturation without VNNI), and a quantiser that scales
activations per call (batch mates); and the tags are compared alone and batched.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tagger.predict as predict_module
import tagger.subwords as subwords_module
from conftest import SHARED, WORDS, Trained, quiet_export, shared_corpus
from tagger.export.portable import INTEGER_PRODUCTS, float_compute, plain_session_products, saturation_risks
from tagger.annotate import DocStart, Entity, TaggedSentence, annotate
from tagger.artifact import load_artifact
from tagger.documents import Document
from tagger.predict import SentenceTagger, Tagger
from tagger.shipped import shipped_files

SHIPPED = shipped_files()
# Caps far below the defaults: every document's windows and sentences meet other batch mates.
SMALL_BATCHES = {(subwords_module, "BATCH_PIECES"): 96, (subwords_module, "MAX_WINDOWS"): 3,
                 (predict_module, "BATCH_WORDS"): 24, (predict_module, "MAX_BATCH"): 3,
                 (predict_module, "DECODE_WORDS"): 24, (predict_module, "DECODE_BATCH"): 3}
TEXTS = ["Тарас Шевченко народився в Моринцях. Київський національний університет імені Шевченка розташований у Києві.",
         "Президент Володимир Зеленський підписав Закон про освіту.",
         "У Моринцях. Тарас Шевченко.\nКиївський національний університет розташований у Києві, а Шевченко у Моринцях.",
         "Закон про освіту підписав Зеленський."]


def integer_matmul(weight: np.ndarray, weight_type: int) -> onnx.ModelProto:
    """A one-node MatMulInteger graph: u8 activations x the given constant weights."""
    node = helper.make_node("MatMulInteger", ["x", "w"], ["y"], name="mm")
    w = numpy_helper.from_array(weight, "w")
    w.data_type = weight_type
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 2])], [w])
    return helper.make_model(graph)


def test_the_saturation_check_admits_only_u8_or_7_bit_s8_weights() -> None:
    seven_bit = np.array([[-64, 63]] * 4, dtype=np.int8)
    assert saturation_risks(integer_matmul(seven_bit, TensorProto.INT8)) == []
    assert saturation_risks(integer_matmul(np.full((4, 2), 255, np.uint8), TensorProto.UINT8)) == []
    for bad in (-65, 64, 127, -128):
        risks = saturation_risks(integer_matmul(np.array([[bad, 0]] * 4, dtype=np.int8), TensorProto.INT8))
        assert len(risks) == 1 and "outside [-64, 63]" in risks[0], bad


def int8_export(trained: Trained, corpus: Path, out: Path) -> Path:
    report = quiet_export(trained.checkpoint, out, quantize="int8", data=str(corpus))
    return report.path


@pytest.fixture(scope="module", params=["trained", "trained_bert"])
def fresh_int8(request: pytest.FixtureRequest, session_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh INT8 export of the tiny BiLSTM and of the tiny BERT."""
    trained = request.getfixturevalue(request.param)
    return int8_export(trained, session_corpus, tmp_path_factory.mktemp("int8") / f"{request.param}.onnx")


def test_a_fresh_int8_export_has_no_integer_product_and_keeps_int8_weights(fresh_int8: Path) -> None:
    model = onnx.load(str(fresh_int8))
    assert saturation_risks(model) == []
    ops = {node.op_type for node in model.graph.node}
    assert not ops & (set(INTEGER_PRODUCTS) | {"DynamicQuantizeLinear"}), ops
    int8 = [i for i in model.graph.initializer if i.data_type == TensorProto.INT8 and len(i.dims) >= 2]
    assert int8, "the weights are no longer stored in INT8"


def test_the_check_would_have_caught_the_old_format(exported_bert: Path, tmp_path: Path) -> None:
    """onnxruntime's dynamic quantiser alone writes S8 weights up to +-127; float_compute removes them all."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The BERT export is fused (export/fusion.py): the quantiser cannot type the fused ops' outputs
        # without DefaultTensorType, and its MatMuls are where the old format put its integer products.
        quantize_dynamic(str(exported_bert), str(tmp_path / "q.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], extra_options={"DefaultTensorType": TensorProto.FLOAT})
    graph = onnx.load(str(tmp_path / "q.onnx"))
    risks = saturation_risks(graph)
    assert risks and all("MatMulInteger" in r for r in risks)
    rewritten = float_compute(graph)
    assert rewritten == len(risks) and saturation_risks(graph) == []
    onnx.checker.check_model(graph)


def int8_weights_behind(form: str) -> onnx.ModelProto:
    """x @ (INT8 weights x a scale per column), the weights widened by `form`: 'Cast+Mul' or 'DequantizeLinear'."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.integers(-127, 128, (64, 32)).astype(np.int8), "w8"),
             numpy_helper.from_array(rng.random(32).astype(np.float32), "scale")]
    if form == "Cast+Mul":
        widen = [helper.make_node("Cast", ["w8"], ["wide"], to=TensorProto.FLOAT), helper.make_node("Mul", ["wide", "scale"], ["w"])]
    else:
        widen = [helper.make_node("DequantizeLinear", ["w8", "scale"], ["w"], axis=1)]
    graph = helper.make_graph([*widen, helper.make_node("MatMul", ["x", "w"], ["y"], name="product")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 32])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_plain_onnxruntime_session_keeps_cast_mul_weights_float_but_not_dequantize_linear() -> None:
    """Why the INT8 weights sit behind Cast+Mul: ORT's default passes fuse DequantizeLinear + MatMul
    into an int8-computing MatMulNBits (the check would catch a change of form)."""
    assert plain_session_products(int8_weights_behind("Cast+Mul")) == []
    found = plain_session_products(int8_weights_behind("DequantizeLinear"))
    assert len(found) == 1 and "MatMulNBits" in found[0] and "accuracy level 4" in found[0], found


def test_a_fresh_int8_export_stays_float_in_a_plain_onnxruntime_session(fresh_int8: Path) -> None:
    assert plain_session_products(fresh_int8) == []


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_models_stay_float_in_a_plain_onnxruntime_session(path: Path) -> None:
    assert plain_session_products(path) == []


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_models_have_no_product_that_can_saturate(path: Path) -> None:
    model = onnx.load(str(path))
    assert saturation_risks(model) == []
    assert not {n.op_type for n in model.graph.node} & {"DynamicQuantizeLinear", "DynamicQuantizeLSTM", "MatMulInteger"}


def entities(tagger: SentenceTagger, texts: Sequence[str], lang: str) -> list[list[Entity]]:
    """Each text's entities, the texts tagged together (batched across documents)."""
    found: list[list[Entity]] = []
    for event in annotate([Document(f"doc{k}", [t]) for k, t in enumerate(texts)], tagger, lang):
        if isinstance(event, TaggedSentence):
            found[-1] += event.entities
        elif isinstance(event, DocStart):
            found.append([])
    return found


def assert_batch_mates_change_nothing(tagger: SentenceTagger, texts: Sequence[str], lang: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    alone = [entities(tagger, [t], lang)[0] for t in texts]
    together = entities(tagger, texts, lang)
    reordered = entities(tagger, texts[::-1], lang)[::-1]
    for (module, name), value in SMALL_BATCHES.items():
        monkeypatch.setattr(module, name, value)
    small = entities(tagger, texts, lang)
    assert together == alone and reordered == alone and small == alone
    assert sum(map(len, alone)) > 0  # something was tagged, so the comparison means something


def test_a_fresh_int8_export_tags_alike_alone_and_batched(fresh_int8: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tagger = Tagger(load_artifact(fresh_int8, "cpu"))
    assert tagger.tag(WORDS) == [tagger.tag([w])[0] for w in WORDS]
    assert_batch_mates_change_nothing(tagger, TEXTS, "uk", monkeypatch)


def shipped_texts(lang: str) -> list[str]:
    """A few real documents of the language's test data: ner-uk raw texts, or WNUT-17 tweets."""
    if lang == "uk":
        raw = shared_corpus("ner-uk") / "raw" / "test"
        return [p.read_text(encoding="utf-8")[:1500] for p in sorted(raw.glob("*.txt"))[:4]]
    lines = (shared_corpus("wnut17") / "test.conll").read_text(encoding="utf-8").split("\n\n")[:24]
    return [" ".join(row.split("\t")[0] for row in block.splitlines() if row.strip()) for block in lines]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_models_tag_a_document_alike_alone_and_batched(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"no shared corpora at {SHARED}")
    tagger = Tagger(load_artifact(path, "cpu"))
    assert_batch_mates_change_nothing(tagger, shipped_texts(tagger.language), tagger.language, monkeypatch)
