"""A file of several heads (seeds of one recipe): it tags as the Ensemble of its source files does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from conftest import WORDS, Trained, assert_clean_error, quiet_export, tiny_bert_config, tiny_config, train_tiny
from tagger.artifact import load_artifact
from tagger.cli import cli
from tagger.ensemble import Ensemble
from tagger.errors import ArtifactError, TaggerError
from tagger.export.header import get_header, set_header
from tagger.export.heads import merge_heads
from tagger.header import HEADS_FORMAT_VERSION
from tagger.predict import Tagger

# Words the tiny models never saw, beside the corpus's own: unknown words take the heads apart.
SENTENCES = [*WORDS, ["Невідомий", "Голуб", "приїхав", "до", "Запоріжжя", "."], []]


@pytest.fixture(scope="module")
def second_seed(session_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny BiLSTM recipe on the same corpus with another seed, exported: same vocabulary."""
    out = tmp_path_factory.mktemp("seed7")
    run: Trained = train_tiny(tiny_config(session_corpus, out, seed=7), out)
    path = out / "tiny_lstm_s7.onnx"
    quiet_export(run.checkpoint, path)
    return path


@pytest.fixture(scope="module")
def merged(exported: Path, second_seed: Path, session_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "two_heads.onnx"
    report = merge_heads([exported, second_seed], out, str(session_corpus))
    assert report.heads == 2 and report.max_diff == 0.0 and report.test_f1 is not None
    assert 0 < report.shared_nodes < len(onnx.load(str(exported)).graph.node)  # what reads the inputs alike
    return out


def tagged(model: Tagger | Ensemble) -> tuple[list[list[str]], list[list[float]]]:
    return model.tag_scored(SENTENCES)


def test_a_file_of_two_heads_tags_as_the_average_of_its_two_files(exported: Path, second_seed: Path,
                                                                   merged: Path) -> None:
    one, two = Tagger(load_artifact(exported, "cpu")), Tagger(load_artifact(second_seed, "cpu"))
    heads = Tagger(load_artifact(merged, "cpu"))
    # a reader of format 1 would take the file for its first head alone: it is told to upgrade instead
    assert heads.artifact.header["format_version"] == HEADS_FORMAT_VERSION > one.artifact.header["format_version"]
    assert one.tag(SENTENCES) != two.tag(SENTENCES) or one.tag_scored(SENTENCES)[1] != two.tag_scored(SENTENCES)[1]
    tags, scores = tagged(heads)
    want_tags, want_scores = tagged(Ensemble([one, two]))
    assert tags == want_tags
    np.testing.assert_allclose(np.concatenate([np.asarray(s) for s in scores]),
                               np.concatenate([np.asarray(s) for s in want_scores]), atol=1e-6)
    # each head is its own file's model, read from one run of the merged graph
    for k, alone in enumerate((one, two)):
        for got, want in zip(heads.heads(heads.emit(SENTENCES))[k], alone.emit(SENTENCES)):
            np.testing.assert_array_equal(got, want)


def test_a_file_of_heads_beside_another_model_weighs_as_one(exported: Path, second_seed: Path, merged: Path,
                                                             exported_bert: Path) -> None:
    """`--model heads.onnx --model bert.onnx --weights 0.5,0.5` is each head at 0.25 beside the BERT's 0.5."""
    bert = Tagger(load_artifact(exported_bert, "cpu"))
    got = tagged(Ensemble([Tagger(load_artifact(merged, "cpu")), bert], [0.5, 0.5]))
    want = tagged(Ensemble([Tagger(load_artifact(exported, "cpu")), Tagger(load_artifact(second_seed, "cpu")), bert],
                           [0.25, 0.25, 0.5]))
    assert got[0] == want[0]
    np.testing.assert_allclose(np.concatenate([np.asarray(s) for s in got[1]]),
                               np.concatenate([np.asarray(s) for s in want[1]]), atol=1e-6)


def test_two_bert_seeds_in_one_file_tag_as_their_average(session_corpus: Path, tiny_encoder: Path,
                                                         exported_bert: Path, tmp_path: Path) -> None:
    """BERT heads read the same windows: one run of the merged graph, each head its own CRF-less chain."""
    run: Trained = train_tiny(tiny_bert_config(session_corpus, tmp_path / "s7", tiny_encoder, seed=7), tmp_path / "s7")
    other = quiet_export(run.checkpoint, tmp_path / "bert_s7.onnx").path  # type: ignore[attr-defined]
    report = merge_heads([exported_bert, other], tmp_path / "berts.onnx", str(session_corpus))
    assert report.max_diff == 0.0
    got = tagged(Tagger(load_artifact(report.path, "cpu")))
    want = tagged(Ensemble([Tagger(load_artifact(exported_bert, "cpu")), Tagger(load_artifact(other, "cpu"))]))
    assert got[0] == want[0]
    np.testing.assert_allclose(np.concatenate([np.asarray(s) for s in got[1]]),
                               np.concatenate([np.asarray(s) for s in want[1]]), atol=1e-6)


def test_weights_the_heads_hold_alike_are_stored_once(exported: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin.onnx"
    shutil.copy(exported, twin)
    report = merge_heads([exported, twin], tmp_path / "twice.onnx", scored=False)
    assert report.test_f1 is None
    initializers = sum(len(t.SerializeToString()) for t in onnx.load(str(exported)).graph.initializer)
    assert report.shared_bytes == initializers
    merged = onnx.load(str(tmp_path / "twice.onnx")).graph
    assert sum(len(t.SerializeToString()) for t in merged.initializer) == initializers  # one copy
    # twins compute everything alike: every node runs once, the second head's output is the first's
    nodes = len(onnx.load(str(exported)).graph.node)
    assert report.shared_nodes == nodes and len(merged.node) == nodes + 1
    assert [o.name for o in merged.output] == ["emissions", "emissions_1"]


def test_merging_refuses_models_that_cannot_share_inputs(exported: Path, exported_bert: Path, merged: Path,
                                                         tmp_path: Path) -> None:
    with pytest.raises(TaggerError, match="its arch differs"):
        merge_heads([exported, exported_bert], tmp_path / "x.onnx")
    with pytest.raises(TaggerError, match="already holds several heads"):
        merge_heads([merged, exported], tmp_path / "x.onnx")
    with pytest.raises(TaggerError, match="two or more"):
        merge_heads([exported], tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_a_header_with_malformed_heads_is_refused(merged: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    shutil.copy(merged, broken)
    header = get_header(onnx.load(str(broken)), broken)
    set_header(broken, {**header, "heads": [{"output": "emissions"}]})  # type: ignore[typeddict-item]
    with pytest.raises(ArtifactError, match="two or more"):
        load_artifact(broken, "cpu")
    set_header(broken, {**header, "heads": [{"output": "emissions"}, {"output": "nowhere"}]})  # type: ignore[typeddict-item]
    with pytest.raises(ArtifactError, match="no output 'nowhere'"):
        load_artifact(broken, "cpu")


def test_export_merges_files_from_the_command_line(exported: Path, second_seed: Path, session_corpus: Path,
                                                   tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli_heads.onnx"
    result = runner.invoke(cli, ["export", str(exported), str(second_seed), "-o", str(out), "--data", str(session_corpus)])
    assert result.exit_code == 0, result.output
    assert "2 heads" in result.stderr and out.is_file()
    tagged_out = runner.invoke(cli, ["tag", "--model", str(out), "--format", "jsonl"], input=" ".join(WORDS[0]))
    assert tagged_out.exit_code == 0 and "(lstm×2, uk)" in tagged_out.stderr
    info = runner.invoke(cli, ["info", str(out), "--json"])
    assert info.exit_code == 0, info.output
    assert [h["seed"] for h in json.loads(info.stdout)["heads"]] == [13, 7]
    assert_clean_error(runner.invoke(cli, ["export", str(exported), str(second_seed)]))  # no -o
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert "junk.onnx: not an ONNX file" in assert_clean_error(
        runner.invoke(cli, ["export", str(exported), str(junk), "-o", str(tmp_path / "x.onnx")]))
    assert "no such folder" in assert_clean_error(
        runner.invoke(cli, ["export", str(exported), str(second_seed), "-o", str(tmp_path / "nowhere" / "x.onnx")]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli_heads.onnx", "junk.onnx"]  # nothing half-written


def test_a_weight_is_known_by_its_content_whatever_its_name_or_stated_location() -> None:
    from onnx import numpy_helper

    from tagger.export.heads import tensor_key

    table = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "piece_table")
    renamed = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "h1/other")
    renamed.data_location = onnx.TensorProto.DEFAULT  # one exporter states it, another leaves it out
    assert tensor_key(table) == tensor_key(renamed)
    assert tensor_key(table) != tensor_key(numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(3, 2)))
    assert tensor_key(table) != tensor_key(numpy_helper.from_array(np.arange(6, dtype=np.float64).reshape(2, 3)))
