"""The two written-down contracts: a model header or a checkpoint that lacks a key its arch needs
fails where it is loaded, in one line that names the file and the key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import onnx
import pytest
import torch
from click.testing import CliRunner

from conftest import LABELS, assert_clean_error
from tagger.artifact import load_artifact
from tagger.cli import cli
from tagger.errors import ArtifactError
from tagger.header import META_KEY, BertHeader, LstmHeader, check_header, required_keys
from tagger.shipped import shipped_files
from tagger.train.checkpoint import CHECKPOINT_VERSION, load_checkpoint

SHIPPED = shipped_files()


def header_of(path: Path) -> dict[str, object]:
    """The JSON header of an ONNX file, read without its weights."""
    graph = onnx.load(str(path), load_external_data=False)
    return json.loads({p.key: p.value for p in graph.metadata_props}[META_KEY])


def with_header(source: Path, target: Path, header: object) -> Path:
    """A copy of `source` whose tagger header is `header` (as JSON)."""
    graph = onnx.load(str(source))
    kept = {p.key: p.value for p in graph.metadata_props if p.key != META_KEY}
    del graph.metadata_props[:]
    onnx.helper.set_model_props(graph, {**kept, META_KEY: json.dumps(header)})
    onnx.save(graph, str(target))
    return target


def one_line(err: pytest.ExceptionInfo[ArtifactError]) -> str:
    """The error's message, checked to be one line."""
    message = str(err.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_headers_hold_every_key_their_arch_requires(path: Path) -> None:
    header = check_header(header_of(path), path)
    schema = {"lstm": LstmHeader, "bert": BertHeader}[str(header["arch"])]
    assert set(required_keys(schema)) <= set(header)


def test_a_header_that_names_the_arch_kind_as_older_exports_did_loads_the_same(exported: Path, tmp_path: Path) -> None:
    header = header_of(exported)
    assert check_header(header, exported) is header and header["arch"] == "lstm"
    legacy = {("kind" if k == "arch" else k): v for k, v in header.items()}
    path = with_header(exported, tmp_path / "legacy.onnx", legacy)
    assert load_artifact(path, device="cpu").header == header


@pytest.mark.parametrize("key", required_keys(LstmHeader))
def test_an_lstm_header_without_a_required_key_fails_at_load(exported: Path, tmp_path: Path, key: str) -> None:
    header = {k: v for k, v in header_of(exported).items() if k != key}
    path = with_header(exported, tmp_path / "partial.onnx", header)
    with pytest.raises(ArtifactError) as err:
        load_artifact(path, device="cpu")
    message = one_line(err)
    assert message.startswith(f"{path}: ") and f"lacks {key}" in message and "re-export" in message


def test_a_bert_header_without_its_tokenizer_fails_at_load(exported_bert: Path, tmp_path: Path) -> None:
    header = {k: v for k, v in header_of(exported_bert).items() if k != "subwords"}
    path = with_header(exported_bert, tmp_path / "partial.onnx", header)
    with pytest.raises(ArtifactError) as err:
        load_artifact(path, device="cpu")
    assert one_line(err) == f"{path}: tagger header lacks subwords (needed by arch 'bert'); re-export the model"


def test_a_header_of_one_arch_with_the_other_archs_keys_fails_at_load(exported: Path, tmp_path: Path) -> None:
    """A BiLSTM header relabelled as BERT has a vocabulary but no subword tokenizer."""
    path = with_header(exported, tmp_path / "relabelled.onnx", {**header_of(exported), "arch": "bert"})
    with pytest.raises(ArtifactError) as err:
        load_artifact(path, device="cpu")
    assert one_line(err) == f"{path}: tagger header lacks subwords (needed by arch 'bert'); re-export the model"


def test_a_header_that_is_not_a_json_object_fails_at_load(exported: Path, tmp_path: Path) -> None:
    path = with_header(exported, tmp_path / "list.onnx", ["lstm"])
    with pytest.raises(ArtifactError) as err:
        load_artifact(path, device="cpu")
    assert one_line(err) == f"{path}: tagger metadata is not a JSON object; re-export the model"


def test_tag_shows_a_missing_header_key_as_one_error_line(exported: Path, tmp_path: Path) -> None:
    header = {k: v for k, v in header_of(exported).items() if k != "vocab"}
    path = with_header(exported, tmp_path / "partial.onnx", header)
    result = CliRunner().invoke(cli, ["tag", "--model", str(path)], input="Київ\n")
    expected = f"Error: {path}: tagger header lacks vocab (needed by arch 'lstm'); re-export the model"
    assert assert_clean_error(result) == expected


# --- checkpoints --------------------------------------------------------------------------------


def checkpoint(arch: str, **changes: object) -> dict[str, object]:
    """A plain-data checkpoint with every key its arch needs (the weights do not matter here)."""
    data: dict[str, object] = {"format_version": CHECKPOINT_VERSION, "arch": arch, "config": {"lang": "uk"},
                               "labels": LABELS, "vocab": {}, "state_dict": {"w": torch.zeros(2)}}
    if arch == "bert":
        data["encoder_config"] = "{}"
    data.update(changes)
    return data


def saved(tmp_path: Path, data: dict[str, object], drop: str = "") -> Path:
    """`data` without the key `drop`, saved as a checkpoint file."""
    path = tmp_path / "model.pth"
    torch.save({k: v for k, v in data.items() if k != drop}, path)
    return path


@pytest.mark.parametrize("arch", ["lstm", "bert"])
def test_a_checkpoint_with_its_arch_keys_loads(tmp_path: Path, arch: str) -> None:
    assert load_checkpoint(saved(tmp_path, checkpoint(arch)))["arch"] == arch


@pytest.mark.parametrize(
    ("data", "drop", "expected"),
    [
        (checkpoint("bert"), "encoder_config", "checkpoint lacks encoder_config (needed by arch 'bert'); train it"),
        (checkpoint("lstm", config={"lang": "uk", "context": "intfloat/multilingual-e5-small"}), "encoder_config",
         "checkpoint lacks encoder_config (needed by arch 'lstm' with a context encoder); train it"),
        (checkpoint("lstm"), "vocab", "not a tagger checkpoint (it lacks vocab)"),
        (checkpoint("bert"), "labels", "not a tagger checkpoint (it lacks labels)"),
        (checkpoint("crf"), "", "unknown model arch 'crf'; known: lstm, bert"),
    ],
    ids=["bert without its encoder config", "context lstm without its encoder config", "no vocab", "no labels",
         "unknown arch"],
)
def test_a_checkpoint_without_a_key_its_arch_needs_fails_at_load(
    tmp_path: Path, data: dict[str, object], drop: str, expected: str
) -> None:
    path = saved(tmp_path, data, drop)
    with pytest.raises(ArtifactError) as err:
        load_checkpoint(path)
    assert one_line(err).startswith(f"{path}: {expected}")


def test_export_names_a_missing_checkpoint_key(tmp_path: Path) -> None:
    """The export command reads checkpoints through the same check."""
    from tagger.export.onnx import export_checkpoint

    path = saved(tmp_path, checkpoint("bert"), "encoder_config")
    expected = f"{path}: checkpoint lacks encoder_config (needed by arch 'bert')"
    with pytest.raises(ArtifactError, match="^" + re.escape(expected)):
        export_checkpoint(path, tmp_path / "out.onnx")


def test_a_checkpoint_the_reader_would_refuse_is_never_written(tmp_path: Path) -> None:
    from tagger.train.checkpoint import save_checkpoint

    path = tmp_path / "model.pth"
    incomplete = {k: v for k, v in checkpoint("bert").items() if k != "encoder_config"}
    with pytest.raises(ArtifactError, match="lacks encoder_config"):
        save_checkpoint(path, incomplete)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
    save_checkpoint(path, checkpoint("bert"))  # type: ignore[arg-type]
    assert load_checkpoint(path)["arch"] == "bert"
