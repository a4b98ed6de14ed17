"""Export: the ONNX file is self-describing, matches torch, and is checked when loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import tagger.export.onnx as exporter
from conftest import LABELS, TAGS, WORDS, Trained, tiny_config, torch_tags, train_tiny
from tagger import predict as predict_module
from tagger.artifact import load_artifact
from tagger.conll import Sentence
from tagger.errors import ArtifactError, TaggerError
from tagger.features import LstmEncoder
from tagger.header import FORMAT_VERSION, META_KEY
from tagger.predict import Tagger
from tagger.train.checkpoint import load_checkpoint
from tagger.train.models import build_model

CPU = torch.device("cpu")

# torch's own shape checks in rnn.py warn while tracing; torch ignores them outside pytest.
pytestmark = pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning")


@pytest.fixture(scope="module")
def artifact(exported: Path):  # noqa: ANN201 - tagger.artifact.Artifact
    return load_artifact(exported, device="cpu")


@pytest.fixture(scope="module")
def torch_model(trained: Trained):  # noqa: ANN201 - (BiLSTMTagger, LstmVocab)
    return build_model(load_checkpoint(trained.checkpoint))


def test_header_describes_the_model(artifact, trained: Trained) -> None:  # noqa: ANN001
    header = artifact.header
    assert header["format_version"] == FORMAT_VERSION
    assert artifact.arch == "lstm" and artifact.language == "uk"
    assert artifact.labels == LABELS
    checkpoint = load_checkpoint(trained.checkpoint)
    assert header["vocab"]["words"] == checkpoint["vocab"]["words"]
    assert header["vocab"]["chars"] == checkpoint["vocab"]["chars"]
    crf = header["crf"]
    assert np.asarray(crf["transitions"]).shape == (len(LABELS), len(LABELS))
    assert np.asarray(crf["start"]).shape == np.asarray(crf["end"]).shape == (len(LABELS),)
    assert np.allclose(crf["transitions"], checkpoint["state_dict"]["crf.transitions"].numpy())
    provenance = header["provenance"]
    assert "CC BY-NC-SA" in provenance["license"]  # the ner-uk license travels with the model
    assert provenance["config"] == trained.config.to_dict()
    assert provenance["metrics"]["validation"]["micro"]["f1"] == 1.0
    assert provenance["metrics"]["test"]["micro"]["f1"] == 1.0
    # JSON only: the header survives a JSON round trip unchanged.
    assert json.loads(json.dumps(header)) == header


def test_onnx_tags_equal_torch_tags_and_gold(artifact, torch_model) -> None:  # noqa: ANN001
    model, vocab = torch_model
    sentences = [Sentence(list(w), list(t)) for w, t in zip(WORDS, TAGS)]
    tags = torch_tags(model, vocab, LABELS, [s.words for s in sentences])
    assert Tagger(artifact).tag(WORDS) == tags == TAGS


@pytest.mark.parametrize(
    "batch",
    [
        [["Київ"]],
        [["Тарас", "Шевченко"], ["Президент", "Володимир", "Зеленський", "підписав", "закон", "."]],
        [["a"] * 17, ["b"], ["Надзвичайнодовжелезнеслово", "x"], ["У", "Києві"], ["."]],
    ],
    ids=["1x1", "2 sentences", "5 sentences, long words"],
)
def test_dynamic_axes_match_torch(artifact, torch_model, batch: list[list[str]]) -> None:  # noqa: ANN001
    model, vocab = torch_model
    inputs = LstmEncoder(vocab).encode(batch)
    (got,) = artifact.session.run([artifact.header["output"]], inputs)
    seq_len = max(len(s) for s in batch)
    assert got.shape == (len(batch), seq_len, len(LABELS))
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).numpy()
    for b, words in enumerate(batch):
        assert np.abs(got[b, : len(words)] - want[b, : len(words)]).max() < 1e-4


def test_tagger_batched_equals_one_by_one(artifact, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    tagger = Tagger(artifact)
    sentences = [*WORDS, [], ["Київ"], WORDS[1] * 3, ["Тарас", "Шевченко", "та", "Києві"], WORDS[0]]
    one_by_one = [tagger.tag([s])[0] for s in sentences]
    assert [len(t) for t in one_by_one] == [len(s) for s in sentences]
    assert tagger.tag(sentences) == one_by_one
    assert tagger.tag([]) == []
    assert tagger.tag([[]]) == [[]]
    # Tiny batches (several ORT calls) keep input order.
    monkeypatch.setattr(predict_module, "BATCH_WORDS", 10)
    monkeypatch.setattr(predict_module, "MAX_BATCH", 2)
    assert tagger.tag(sentences) == one_by_one


def test_long_sentences_are_scored_in_pieces_never_truncated(artifact, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(predict_module, "MAX_WORDS", 4)
    tagger = Tagger(artifact)
    long = WORDS[1] + WORDS[2]  # 17 words: pieces of 4, 4, 4, 4, 1, scored apart, decoded as one sentence
    (scores,) = tagger.emit([long], None)
    parts = [tagger.emit([long[start : start + 4]], None)[0] for start in range(0, len(long), 4)]
    assert np.allclose(scores, np.concatenate(parts), atol=1e-5)
    tags = tagger.tag([long])[0]
    assert len(tags) == len(long)


def test_export_writes_a_loadable_file_beside_the_checkpoint(trained: Trained, tmp_path: Path) -> None:
    checkpoint = tmp_path / "best_lstm.pth"
    shutil.copy(trained.checkpoint, checkpoint)
    report = exporter.export_checkpoint(checkpoint)
    assert report.path == tmp_path / "best_lstm.onnx"
    assert report.size_bytes == report.path.stat().st_size > 0
    assert 0 <= report.max_diff <= exporter.ATOL and report.batches >= 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_lstm.onnx", "best_lstm.pth"]
    assert Tagger(load_artifact(report.path, device="cpu")).tag(WORDS) == TAGS


def test_export_refuses_when_emissions_differ(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter, "ATOL", -1.0)  # no difference is small enough
    out = tmp_path / "model.onnx"
    with pytest.raises(exporter.ExportMismatchError, match="max diff") as err:
        exporter.export_checkpoint(trained.checkpoint, out)
    assert isinstance(err.value, TaggerError)
    assert "emissions" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


def test_export_refuses_when_tags_differ(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong_tags(self: Tagger, sentences: list[list[str]]) -> list[list[str]]:
        return [["B-MISC"] * len(s) for s in sentences]

    monkeypatch.setattr(exporter.Tagger, "tag", wrong_tags)
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous export")  # a failed export leaves an existing file alone
    with pytest.raises(exporter.ExportMismatchError, match="tags"):
        exporter.export_checkpoint(trained.checkpoint, out)
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
    assert out.read_bytes() == b"previous export"


def test_export_to_a_missing_folder_is_an_error(trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(TaggerError, match="no such folder"):
        exporter.export_checkpoint(trained.checkpoint, tmp_path / "nowhere" / "model.onnx")


# --- header validation on load -----------------------------------------------------------------


def with_header(source: Path, target: Path, edit) -> Path:  # noqa: ANN001 - edit(header) -> header | str | None
    """A copy of `source` whose tagger metadata is replaced by `edit(header)` (None: removed)."""
    graph = onnx.load(str(source))
    (entry,) = [p for p in graph.metadata_props if p.key == META_KEY]
    new = edit(json.loads(entry.value))
    kept = [(p.key, p.value) for p in graph.metadata_props if p.key != META_KEY]
    del graph.metadata_props[:]
    for key, value in kept:
        graph.metadata_props.add(key=key, value=value)
    if new is not None:
        graph.metadata_props.add(key=META_KEY, value=new if isinstance(new, str) else json.dumps(new))
    onnx.save(graph, str(target))
    return target


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such file.*tagger export"):
        load_artifact(tmp_path / "absent.onnx")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="is a directory"):
        load_artifact(tmp_path)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text("I am a README, not a model\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"model\.onnx: not a loadable ONNX model.*tagger export"):
        load_artifact(path, device="cpu")


def test_truncated_onnx_file(exported: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.onnx"
    data = exported.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"cut\.onnx: not a loadable ONNX model"):
        load_artifact(path, device="cpu")


def test_onnx_without_tagger_metadata(exported: Path, tmp_path: Path) -> None:
    path = with_header(exported, tmp_path / "bare.onnx", lambda header: None)
    with pytest.raises(ArtifactError, match="not a tagger model.*tagger export"):
        load_artifact(path, device="cpu")


def test_metadata_that_is_not_json(exported: Path, tmp_path: Path) -> None:
    path = with_header(exported, tmp_path / "garbled.onnx", lambda header: "{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(path, device="cpu")


def test_newer_format_version(exported: Path, tmp_path: Path) -> None:
    path = with_header(exported, tmp_path / "future.onnx", lambda header: {**header, "format_version": 99})
    with pytest.raises(ArtifactError, match=r"format 99 is newer.*pip install -U"):
        load_artifact(path, device="cpu")


@pytest.mark.parametrize("key", ["labels", "provenance", "output", "arch"])
def test_header_missing_a_required_key(exported: Path, tmp_path: Path, key: str) -> None:
    path = with_header(exported, tmp_path / "partial.onnx", lambda header: {k: v for k, v in header.items() if k != key})
    with pytest.raises(ArtifactError, match=f"lacks {key}"):
        load_artifact(path, device="cpu")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda header: {**header, "arch": "crf-only"}, "unknown model arch 'crf-only'.*lstm"),
        (lambda header: {**header, "labels": header["labels"][:-2]},
         f"scores {len(LABELS)} labels but the header lists {len(LABELS) - 2}"),
        (lambda header: {**header, "output": "logits"}, "no output 'logits'"),
    ],
    ids=["unknown arch", "labels do not match the output size", "output name not in the graph"],
)
def test_inconsistent_header_is_refused(exported: Path, tmp_path: Path, edit, expected: str) -> None:  # noqa: ANN001
    path = with_header(exported, tmp_path / "edited.onnx", edit)
    with pytest.raises(ArtifactError, match=expected):
        load_artifact(path, device="cpu")


def test_a_valid_edited_copy_still_loads(exported: Path, tmp_path: Path) -> None:
    """The editing helper itself keeps a file loadable, so the failures above come from the edits."""
    path = with_header(exported, tmp_path / "same.onnx", lambda header: header)
    assert Tagger(load_artifact(path, device="cpu")).tag(WORDS) == TAGS


def test_bilstm_with_piece_features_exports_and_quantizes_to_int8(
    session_corpus: Path, tiny_encoder: Path, tmp_path: Path
) -> None:
    """The float16 piece table passes the parity check, and INT8 quantises it and both LSTM directions.

    The quantiser gives a float16 table a float16 scale, which ONNX Runtime refuses to load: the
    table is widened to float32 first, and the file must load and tag.
    """
    run = train_tiny(tiny_config(session_corpus, tmp_path, pieces=str(tiny_encoder), piece_top_k=10), tmp_path)
    fp32 = exporter.export_checkpoint(run.checkpoint, tmp_path / "fp32.onnx")
    assert {i.name: i.data_type for i in onnx.load(str(fp32.path)).graph.initializer}["piece_table"] == onnx.TensorProto.FLOAT16
    int8 = exporter.export_checkpoint(run.checkpoint, tmp_path / "int8.onnx", quantize="int8", data=str(session_corpus))
    graph = onnx.load(str(int8.path)).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("LSTM") == 2 and "DynamicQuantizeLSTM" not in ops  # forward and backward, one layer, float compute
    types = {i.name: i.data_type for i in graph.initializer}
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    assert types["piece_table_quantized"] in eight_bit and "piece_table" not in types
    lstm_weights = [n.input[1] for n in graph.node if n.op_type == "LSTM"]  # widened from INT8 by Cast + Mul
    assert all(types[f"{w}_int8"] == onnx.TensorProto.INT8 for w in lstm_weights)
    assert int8.size_bytes < fp32.size_bytes  # the tiny header (vocabulary, tokenizer) is most of either file
    assert int8.quantized is not None and int8.quantized["test_f1_fp32"] == 1.0
    assert int8.quantized["test_f1_int8"] >= 0.9
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx") == ["fp32.onnx", "int8.onnx"]
    assert [len(t) for t in Tagger(load_artifact(int8.path, device="cpu")).tag(WORDS)] == [len(w) for w in WORDS]
