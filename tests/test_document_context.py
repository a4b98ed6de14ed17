"""BERT with document context: consecutive sentences read as one text, in training, export and tagging."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import TAGS, WORDS, Trained, assert_clean_error, quiet_export, tiny_bert_config, train_tiny
from tagger.artifact import load_artifact
from tagger.cli import cli
from tagger.predict import Tagger
from tagger.subwords import SubwordEncoder, join_runs
from tagger.train.checkpoint import load_checkpoint

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
    from tagger.train.config import TrainConfig

    with pytest.raises(ValueError, match="document_context is for --arch bert"):
        TrainConfig(arch="lstm", data=str(session_corpus), out=str(tmp_path), document_context=True)


# Document boundaries of the inline corpus (conftest.CONLL): sentence 1 alone, sentences 2 and 3 together.
DOCUMENTS_TSV = "split\tdocument\tsentences\ttokens\nvalidation\tv\t3\t23\ntest\ta\t1\t6\ntest\tb\t2\t17\n"


def test_document_ids_read_documents_tsv(corpus_dir: Path) -> None:
    from tagger.corpus import document_ids, read_local_split

    (corpus_dir / "documents.tsv").write_text(DOCUMENTS_TSV, encoding="utf-8")
    assert document_ids(corpus_dir, "test", read_local_split(corpus_dir, "uk", "test")) == ["a", "b", "b"]
    assert document_ids(corpus_dir, "validation", read_local_split(corpus_dir, "uk", "validation")) == ["v"] * 3


@pytest.mark.parametrize(("table", "message"), [
    (DOCUMENTS_TSV.replace("\t6\n", "\t7\n"), r"documents\.tsv:3: document a should hold 7 tokens in 1 sentences"),
    (DOCUMENTS_TSV.replace("\t2\t17\n", "\t1\t9\n"), r"documents\.tsv: its test documents cover 2 sentences but"
                                                      r" test\.conll has 3"),
    (DOCUMENTS_TSV.replace("\t1\t6\n", "\tone\t6\n"), r"documents\.tsv:3: expected the columns"),
    (None, r"documents\.tsv: no such file"),
    (b"split\tdocument\nt\xff\xfe\n", r"documents\.tsv:2: not valid UTF-8 at byte offset 16"),
    (b"split\tdocument\nt\x00\n", r"documents\.tsv:2: contains NUL bytes"),
    ("\ufeff" + DOCUMENTS_TSV.replace("\t6\n", "\t7\n"), r"documents\.tsv:3: document a should hold 7"),  # a BOM is read
])
def test_document_ids_refuse_a_table_that_does_not_match(corpus_dir: Path, table: str | bytes | None, message: str) -> None:
    from tagger.corpus import document_ids, read_local_split
    from tagger.errors import TaggerError

    if isinstance(table, bytes):
        (corpus_dir / "documents.tsv").write_bytes(table)
    elif table is not None:
        (corpus_dir / "documents.tsv").write_text(table, encoding="utf-8")
    with pytest.raises(TaggerError, match=message):
        document_ids(corpus_dir, "test", read_local_split(corpus_dir, "uk", "test"))


def test_evaluate_by_document_reads_each_document_alone(doc_tagger: Tagger, corpus_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`evaluate --by-document` hands the model each sentence's document; without it, none (one text)."""
    from tagger.metrics import score

    (corpus_dir / "documents.tsv").write_text(DOCUMENTS_TSV, encoding="utf-8")
    apart = score(TAGS, doc_tagger.tag(WORDS[:1]) + doc_tagger.tag(WORDS[1:]), types=["PERS", "ORG", "LOC", "MISC"])
    assert apart.to_json()["micro"]["f1"] < 1.0  # the tiny model leans on its neighbours: the two readings differ
    seen: list[object] = []
    original = Tagger.tag

    def recording(self: Tagger, sentences: list, runs: object = None) -> list[list[str]]:
        seen.append(runs)
        return original(self, sentences, runs)

    monkeypatch.setattr(Tagger, "tag", recording)
    model = str(doc_tagger.artifact.path)
    for flags, runs, name, micro in (([], None, "doc.onnx", {"precision": 1.0, "recall": 1.0, "f1": 1.0}),
                                     (["--by-document"], ["a", "b", "b"], "doc.onnx, by document",
                                      apart.to_json()["micro"])):
        done = CliRunner().invoke(cli, ["evaluate", "--model", model, "--data", str(corpus_dir), "--json", *flags])
        assert done.exit_code == 0, done.output
        assert seen.pop() == runs
        report = json.loads(done.stdout)
        assert report["model"] == name and report["micro"] == micro


@pytest.mark.parametrize("extra", [["--predictions", "p.conll"], []])
def test_evaluate_by_document_refusals_are_one_line(doc_tagger: Tagger, corpus_dir: Path, extra: list[str]) -> None:
    """With a --predictions file (nothing to read by document), or a folder without documents.tsv."""
    done = CliRunner().invoke(cli, ["evaluate", "--model", str(doc_tagger.artifact.path), "--data", str(corpus_dir),
                                    "--by-document", *extra])
    assert ("drop one of them" if extra else "documents.tsv: no such file") in assert_clean_error(done)


def test_evaluate_documents_scores_only_the_named_documents(doc_tagger: Tagger, corpus_dir: Path,
                                                            tmp_path: Path) -> None:
    """--documents b: sentences 2 and 3 alone, and the errors file holds those sentences, not the split's first ones."""
    (corpus_dir / "documents.tsv").write_text(DOCUMENTS_TSV, encoding="utf-8")
    model, errors = str(doc_tagger.artifact.path), tmp_path / "errors.jsonl"
    base = ["evaluate", "--model", model, "--data", str(corpus_dir), "--json"]
    done = CliRunner().invoke(cli, [*base, "--documents", "b", "--by-document", "--errors", str(errors)])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["model"] == "doc.onnx, by document, documents b*"
    assert report["per_type"]["PERS"]["support"] == 1 and report["per_type"]["ORG"]["support"] == 1  # sentences 2, 3
    for line in errors.read_text(encoding="utf-8").splitlines():
        error = json.loads(line)
        assert error["sentence"] in (2, 3) and error["words"] == WORDS[error["sentence"] - 1]  # numbered in the split
    done = CliRunner().invoke(cli, [*base, "--documents", "z/"])
    assert "--documents z/: no test document of" in assert_clean_error(done) and "a, b" in done.stderr
    done = CliRunner().invoke(cli, [*base, "--documents", "b", "--predictions", str(errors)])
    assert "--documents changes what a model reads" in assert_clean_error(done)


def test_errors_of_a_13_type_model_quote_its_own_corpus(tmp_path: Path) -> None:
    """uk13 with --data naming the folder that holds every corpus: the errors' sentences are ner-uk-2.0's
    (they were ner-uk's, of the same index, before)."""
    from conftest import REPO, shared_corpus

    from tagger.conll import read_conll

    folder = shared_corpus("ner-uk-2.0")
    if not (REPO / "assets" / "uk13_bert.onnx").is_file():
        pytest.skip("the shipped uk13 model is not in assets/")
    gold = read_conll(folder / "validation.conll", (folder / "labels.txt").read_text(encoding="utf-8").split())
    done = CliRunner().invoke(cli, ["evaluate", "--model", "uk13", "--data", str(folder.parent), "--split",
                                    "validation", "--documents", "bruk/", "--json", "--errors", str(tmp_path / "e")])
    assert done.exit_code == 0, done.output
    errors = [json.loads(line) for line in (tmp_path / "e").read_text(encoding="utf-8").splitlines()]
    assert len(errors) > 50 and all(e["words"] == gold[e["sentence"] - 1].words for e in errors)


def test_real_ner_uk_test_split_has_its_documents() -> None:
    from conftest import shared_corpus
    from tagger.corpus import document_ids, read_local_split

    folder = shared_corpus("ner-uk")
    ids = document_ids(folder, "test", read_local_split(folder, "uk", "test"))
    assert len(ids) == 717 and len(set(ids)) == 19
