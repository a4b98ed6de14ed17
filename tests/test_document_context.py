"""BERT with document context: consecutive sentences read as one text, in training, export and tagging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import TAGS, WORDS, Trained, quiet_export, tiny_bert_config, train_tiny
from tagger.artifact import load_artifact
from tagger.cli import cli
from tagger.predict import Tagger
from tagger.subwords import SubwordEncoder, join_runs
from train.checkpoint import load_checkpoint

pytestmark = pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning")


@given(st.lists(st.tuples(st.integers(0, 3), st.lists(st.integers(), max_size=4)), max_size=12))
def test_join_runs_joins_consecutive_sentences_of_a_run_and_remembers_their_lengths(items: list) -> None:
    runs = [r for r, _ in items]
    sentences = [s for _, s in items]
    joined, lengths = join_runs(sentences, runs)
    assert [x for part in joined for x in part] == [x for s in sentences for x in s]
    assert [n for sizes in lengths for n in sizes] == [len(s) for s in sentences]
    changes = sum(1 for k in range(1, len(runs)) if runs[k] != runs[k - 1])
    assert len(joined) == (changes + 1 if runs else 0)
    assert join_runs(sentences)[0] == ([[x for s in sentences for x in s]] if sentences else [])


def test_join_runs_wants_one_run_id_per_sentence() -> None:
    with pytest.raises(ValueError, match="2 run ids for 1 sentences"):
        join_runs([["a"]], [0, 1])


@pytest.fixture(scope="module")
def trained_doc(session_corpus: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The tiny BERT trained with document context, in windows of 16 pieces, so windows span sentences."""
    out = tmp_path_factory.mktemp("trained-doc")
    config = tiny_bert_config(session_corpus, out, tiny_encoder, document_context=True, max_pieces=16, batch_size=2)
    return train_tiny(config, out)


@pytest.fixture(scope="module")
def doc_tagger(trained_doc: Trained, tmp_path_factory: pytest.TempPathFactory) -> Tagger:
    out = tmp_path_factory.mktemp("exported-doc") / "doc.onnx"
    quiet_export(trained_doc.checkpoint, out)
    return Tagger(load_artifact(out, device="cpu"))


def test_trains_on_the_corpus_read_as_one_text_and_exports_the_flag(trained_doc: Trained, doc_tagger: Tagger) -> None:
    assert trained_doc.result.validation_f1 == 1.0
    subwords = SubwordEncoder.from_json(load_checkpoint(trained_doc.checkpoint)["vocab"])
    joined = [w for s in WORDS for w in s]
    windows = subwords.windows([joined])[0]
    assert any(w.start < len(WORDS[0]) < w.end for w in windows)  # a window spans a sentence boundary
    assert f" {len(windows)} training windows" in trained_doc.log.replace("\n", " ")
    assert doc_tagger.artifact.header["subwords"]["document_context"] is True
    assert doc_tagger.tag(WORDS) == TAGS


def test_a_sentence_is_scored_with_its_neighbours_and_documents_do_not_mix(doc_tagger: Tagger) -> None:
    first, second = WORDS[0], WORDS[1]
    together = doc_tagger.emit([first, second], None)
    alone = doc_tagger.emit([second], None)[0]
    assert together[1].shape == alone.shape
    assert not np.allclose(together[1], alone, atol=1e-5)  # the first sentence changed how the second is read
    apart = doc_tagger.emit([first, second], [0, 1])  # two documents: each read alone
    assert np.allclose(apart[1], alone, atol=1e-5)
    assert [len(e) for e in doc_tagger.emit([first, [], second], None)] == [len(first), 0, len(second)]


def test_tag_reads_each_input_document_apart(doc_tagger: Tagger, tmp_path: Path) -> None:
    """Two JSONL documents tagged in one call give what each gives alone: no context crosses a document."""
    texts = ["Тарас Шевченко народився в Моринцях. Київ чекав.", "Леся Українка жила в Києві."]
    model = str(doc_tagger.artifact.path)
    runner = CliRunner()

    def entities(lines: list[str]) -> list[list[dict]]:
        done = runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl", "--lines"], input="".join(t + "\n" for t in lines))
        assert done.exit_code == 0, done.output
        return [json.loads(x)["entities"] for x in done.stdout.splitlines()]

    both = entities(texts)
    assert both == entities(texts[:1]) + entities(texts[1:])


def test_document_context_is_a_bert_option(session_corpus: Path, tmp_path: Path) -> None:
    from train.config import TrainConfig

    with pytest.raises(ValueError, match="document_context is for --arch bert"):
        TrainConfig(arch="lstm", data=str(session_corpus), out=str(tmp_path), document_context=True)
