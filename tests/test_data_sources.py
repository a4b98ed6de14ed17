"""`--data`: a corpus folder (or one holding it), or a known corpus's Hub name, read from the Hub as
users who are online read it; the model's own corpus wherever a folder holds several."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

import tagger.corpus
from conftest import assert_clean_error, write_corpus
from tagger.cli import cli
from tagger.conll import Sentence
from tagger.corpus import CORPORA, KNOWN, SPLITS, Corpus, corpus_for, hub_named, load_split, local_folder
from tagger.errors import TaggerError

NER_UK_2 = KNOWN["ner-uk-2.0"]
KYIV = [Sentence(["Київ"], ["B-LOC"])]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    """The Hub stood in for (tests never reach it): every corpus read from it, with the splits asked for."""
    read: list[tuple[str, tuple[str, ...]]] = []

    def fake(corpus: Corpus, splits: Sequence[str] = SPLITS) -> tuple[list[str], dict[str, list[Sentence]]]:
        read.append((corpus.hub_name, tuple(splits)))
        return list(corpus.labels), {split: KYIV for split in splits}

    monkeypatch.setattr(tagger.corpus, "hub_corpus", fake)
    monkeypatch.delenv("TAGGER_DATA", raising=False)
    return read


def test_a_known_hub_name_names_its_corpus_unless_a_folder_is_called_so(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert hub_named("Goader/ner-uk-2.0") == NER_UK_2
    assert hub_named("benjamin/ner-uk") == CORPORA["uk"]
    assert hub_named("someone/else") is None and hub_named(None) is None
    assert corpus_for("uk", "Goader/ner-uk-2.0") == NER_UK_2 and corpus_for("uk", None) == CORPORA["uk"]
    monkeypatch.chdir(tmp_path)
    write_corpus(tmp_path / "Goader" / "ner-uk-2.0")  # a local folder of that name wins
    assert hub_named("Goader/ner-uk-2.0") is None
    assert local_folder("uk", "Goader/ner-uk-2.0") == Path("Goader/ner-uk-2.0")


def test_a_hub_name_reads_that_corpus_from_the_hub(hub: list[tuple[str, tuple[str, ...]]]) -> None:
    assert local_folder("uk", "Goader/ner-uk-2.0") is None
    assert load_split("uk", "test", "Goader/ner-uk-2.0") == KYIV
    assert load_split("uk", "validation", None) == KYIV  # no --data: the language's own corpus
    assert hub == [("Goader/ner-uk-2.0", ("test",)), ("benjamin/ner-uk", ("validation",))]


def test_training_on_a_hub_name_records_that_corpus(hub: list[tuple[str, tuple[str, ...]]],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import tagger.train.data as data

    monkeypatch.setattr(data, "hub_corpus", tagger.corpus.hub_corpus)  # the fake, as train/data.py holds it
    splits = data.load_splits("uk", "Goader/ner-uk-2.0")
    assert splits.labels == list(NER_UK_2.labels) and splits.test == KYIV
    assert [(c["corpus"], c["source"], c["license"]) for c in splits.corpora] == [
        ("Goader/ner-uk-2.0", "hf:Goader/ner-uk-2.0", NER_UK_2.license)]
    assert hub == [("Goader/ner-uk-2.0", SPLITS)]


def test_a_hub_name_of_another_language_or_corpus_is_refused_before_anything_is_read(
        hub: list[tuple[str, tuple[str, ...]]]) -> None:
    with pytest.raises(TaggerError, match=r"Goader/ner-uk-2.0: the Hub's ner-uk-2.0, a corpus in uk, not en; pass --lang uk"):
        load_split("en", "test", "Goader/ner-uk-2.0")
    with pytest.raises(TaggerError, match=r"the Hub's ner-uk-2.0, but this model is scored on ner-uk; name benjamin/ner-uk"):
        load_split("uk", "test", "Goader/ner-uk-2.0", CORPORA["uk"])
    assert hub == []


def test_a_missing_folder_that_is_no_hub_name_says_which_names_are(tmp_path: Path) -> None:
    with pytest.raises(TaggerError, match=r"no such folder, nor a known corpus's Hub name \(benjamin/ner-uk, wnut_17,"
                                          r" Goader/ner-uk-2.0\)"):
        local_folder("uk", tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(TaggerError, match="file.txt: not a folder"):
        local_folder("uk", tmp_path / "file.txt")


def test_a_folder_holding_several_corpora_gives_each_model_its_own(tmp_path: Path) -> None:
    """`--data ../shared/data` holds ner-uk/ and ner-uk-2.0/: a 13-type model's test split is ner-uk-2.0's
    (export's quantisation scores and a merged file's heads read it so)."""
    from tagger.export.quantize import test_gold

    four = write_corpus(tmp_path / "ner-uk")
    thirteen = write_corpus(tmp_path / "ner-uk-2.0", "Київ\tB-LOC\n\n", list(NER_UK_2.labels))
    def read(sentences: list[Sentence]) -> list[tuple[list[str], list[str]]]:
        return [(s.words, s.tags) for s in sentences]

    assert read(test_gold({"corpus": "Goader/ner-uk-2.0"}, "uk", str(tmp_path))) == read(KYIV)
    assert read(test_gold({"corpus": "benjamin/ner-uk"}, "uk", str(tmp_path))) == read(load_split("uk", "test", four))
    assert read(load_split("uk", "test", four)) != read(KYIV)
    assert read(test_gold({"corpus": "Goader/ner-uk-2.0", "source": str(thirteen)}, "uk", None)) == read(KYIV)


def test_the_cli_takes_hub_names_and_refuses_the_wrong_ones_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    wrong = runner.invoke(cli, ["evaluate", "--lang", "uk", "--arch", "lstm", "--data", "Goader/ner-uk-2.0"])
    assert "but this model is scored on ner-uk; name benjamin/ner-uk" in assert_clean_error(wrong)
    missing = runner.invoke(cli, ["evaluate", "--lang", "uk", "--arch", "lstm", "--data", str(tmp_path / "nope")])
    assert "no such folder, nor a known corpus's Hub name" in assert_clean_error(missing)
    pytest.importorskip("torch")
    train = runner.invoke(cli, ["train", "--lang", "en", "--data", "Goader/ner-uk-2.0", "--out", str(tmp_path / "out")])
    assert "a corpus in uk, not en; pass --lang uk" in assert_clean_error(train)


def test_predictions_are_scored_in_the_scheme_of_the_corpus_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--predictions` with `--data Goader/ner-uk-2.0`: its 13 types, not ner-uk's four."""
    import json

    date = [Sentence(["2024"], ["B-DATE"])]
    monkeypatch.setattr(tagger.corpus, "hub_corpus", lambda corpus, splits=SPLITS: (list(corpus.labels), {s: date for s in splits}))
    monkeypatch.delenv("TAGGER_DATA", raising=False)
    predictions = tmp_path / "pred.tsv"
    predictions.write_text("2024\tB-DATE\n\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["evaluate", "--predictions", str(predictions), "--lang", "uk",
                                      "--data", "Goader/ner-uk-2.0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["micro"]["f1"] == 1.0
