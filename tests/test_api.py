"""The Python API (tagger.load / Pipeline / tagger.evaluate) and the CLI features built on it:
entity scores, --min-score, `tagger info`, the script check, the license notice, a fast Hub failure."""

from __future__ import annotations

import io
import json
import re
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from rich.console import Console

import tagger
from conftest import CONLL, assert_clean_error
from tagger.annotate import DocEnd, DocStart, TaggedSentence, annotate
from tagger.cli import cli
from tagger.documents import Document
from tagger.notices import license_notice
from tagger.header import joined_licenses
from tagger.render import license_names
from tagger.shipped import AVERAGE_TEST_F1
from tagger.stream import progress, script_of

TEXT = "Тарас Шевченко народився в Моринцях.\nПрезидент Володимир Зеленський підписав Закон про освіту."
ENGLISH = ("Barack Obama visited Paris with his wife Michelle and spoke about the economy, "
           "the climate and the elections in the United States of America last year.")


@pytest.fixture
def nlp(exported: Path) -> tagger.Pipeline:
    return tagger.load(model=exported, device="cpu")


def test_load_and_call_give_entities_that_slice_back_with_a_probability(nlp: tagger.Pipeline) -> None:
    entities = nlp(TEXT)
    assert entities and nlp.lang == "uk" and nlp.labels == ["PERS", "ORG", "LOC", "MISC"]
    for e in entities:
        assert TEXT[e.start : e.end] == e.text and 0.0 <= e.score <= 1.0
    assert {e.label for e in entities} >= {"PERS", "LOC"}
    assert nlp("") == [] and nlp("   \n") == []


def test_pipe_keeps_input_order_and_equals_one_by_one(nlp: tagger.Pipeline) -> None:
    texts = [TEXT, "", "Київ", TEXT.split("\n")[1], "Моринцях"] * 3
    for batch_size in (1, 2, 64):
        assert list(nlp.pipe(iter(texts), batch_size=batch_size)) == [nlp(t) for t in texts]


def test_pipe_is_lazy(nlp: tagger.Pipeline) -> None:
    seen: list[int] = []

    def texts():  # noqa: ANN202
        for k in range(100):
            seen.append(k)
            yield TEXT

    first = next(nlp.pipe(texts(), batch_size=4))
    assert first == nlp(TEXT) and len(seen) <= 5  # one batch read (and the next peeked), not all 100


@pytest.mark.parametrize("call, message", [
    (lambda nlp: list(nlp.pipe("one string")), "not one str"),
    (lambda nlp: nlp(b"bytes"), "decode bytes first"),
    (lambda nlp: list(nlp.pipe([TEXT], batch_size=0)), "positive number"),
])
def test_api_misuse_is_a_one_line_tagger_error(nlp: tagger.Pipeline, call, message: str) -> None:  # noqa: ANN001
    with pytest.raises(tagger.TaggerError, match=message):
        call(nlp)


def test_load_refuses_contradictions_before_loading(exported: Path) -> None:
    with pytest.raises(tagger.TaggerError, match="pass one of them"):
        tagger.load(model=exported, arch="bert")
    with pytest.raises(tagger.TaggerError, match="unknown arch"):
        tagger.load("uk", arch="gpt")
    with pytest.raises(tagger.TaggerError, match="'uk' model but lang is 'en'"):
        tagger.load("en", model=exported)


def test_evaluate_is_the_report_the_cli_prints(nlp: tagger.Pipeline, exported: Path, session_corpus: Path) -> None:
    report = tagger.evaluate(nlp, split="test", data=session_corpus)
    assert report.micro.f1 == 1.0  # the tiny model overfits its corpus
    result = CliRunner().invoke(cli, ["evaluate", "--model", str(exported), "--data", str(session_corpus), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps(report.to_json()))


def test_importing_tagger_loads_no_model_code() -> None:
    import subprocess
    import sys

    code = "import sys, tagger; assert 'onnxruntime' not in sys.modules and 'torch' not in sys.modules; print(tagger.__version__)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


# --- the CLI on top -------------------------------------------------------------------------------


def test_min_score_drops_entities_in_every_format(exported: Path) -> None:
    runner = CliRunner()
    base = ["tag", "--model", str(exported), "--format"]
    everything = runner.invoke(cli, [*base, "jsonl"], input=TEXT)
    scores = [e["score"] for e in json.loads(everything.stdout)["entities"]]
    cut = sorted(scores)[len(scores) // 2]
    kept = runner.invoke(cli, [*base, "jsonl", "--min-score", str(cut)], input=TEXT)
    assert [e["score"] for e in json.loads(kept.stdout)["entities"]] == [s for s in scores if s >= cut]
    conll = runner.invoke(cli, [*base, "conll", "--min-score", "1"], input=TEXT)
    assert conll.exit_code == 0 and all(line.endswith("\tO") for line in conll.stdout.splitlines() if "\t" in line)
    assert_clean_error(runner.invoke(cli, [*base, "jsonl", "--min-score", "1.5"], input=TEXT))


def test_a_text_in_another_script_is_warned_about_once(exported: Path) -> None:
    result = CliRunner().invoke(cli, ["tag", "--model", str(exported), "--lines"], input=f"{ENGLISH}\n{ENGLISH}\n")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "Latin script" in warnings[0] and "--lang en" in warnings[0]
    quiet = CliRunner().invoke(cli, ["tag", "--model", str(exported)], input=TEXT * 5)
    assert "warning" not in quiet.stderr
    assert script_of("Київ") is None and script_of(ENGLISH) == "LATIN" and script_of(TEXT) == "CYRILLIC"


def test_info_says_what_a_model_is(exported: Path) -> None:
    result = CliRunner().invoke(cli, ["info", str(exported), "--json"])
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    assert (facts["language"], facts["arch"], facts["labels"]) == ("uk", "lstm", ["PERS", "ORG", "LOC", "MISC"])
    assert facts["encoder"] is None  # a BiLSTM of its own words and characters: no pretrained encoder
    assert facts["training_data"]["sentences"]["train"] == len(CONLL.strip().split("\n\n"))
    assert "CPU" in facts["providers_here"] and facts["size_bytes"] == exported.stat().st_size
    table = CliRunner().invoke(cli, ["info", str(exported)])
    assert table.exit_code == 0 and "trained on" in table.stdout and "license" in table.stdout
    assert "not a shipped model name" in assert_clean_error(CliRunner().invoke(cli, ["info", "no_such_model"]))


def test_the_non_commercial_notice_is_said_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGER_CACHE", str(tmp_path))
    nc = SimpleNamespace(path=Path("uk_x.onnx"), header={"provenance": {"license": "CC BY-NC-SA 4.0 (ner-uk)"}})
    free = SimpleNamespace(path=Path("en_x.onnx"), header={"provenance": {"license": "CC BY 4.0 (WNUT-17)"}})
    said: list[str] = []
    license_notice([nc, free], said.append)  # type: ignore[list-item]
    license_notice([nc, free], said.append)  # type: ignore[list-item]
    assert len(said) == 1 and "uk_x.onnx" in said[0] and "not for commercial use" in said[0]


def test_progress_passes_every_event_through(exported: Path) -> None:
    nlp = tagger.load(model=exported, device="cpu")
    documents = [Document(f"d{k}", [TEXT]) for k in range(3)]
    plain = list(annotate(documents, nlp.model, "uk"))
    shown = io.StringIO()
    console = Console(file=shown, force_terminal=True, width=100)
    assert list(progress(annotate(documents, nlp.model, "uk"), console)) == plain
    assert sum(isinstance(e, DocStart) for e in plain) == sum(isinstance(e, DocEnd) for e in plain) == 3
    assert any(isinstance(e, TaggedSentence) for e in plain)


def test_an_unreachable_hub_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from tagger.corpus import load_split

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("TAGGER_DATA", raising=False)

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", refuse)
    pytest.importorskip("datasets")  # imported before the clock starts: on 2 busy cores its import alone took 2.9 s
    start = time.perf_counter()
    with pytest.raises(tagger.TaggerError, match="cannot reach the Hugging Face Hub.*--data DIR"):
        load_split("uk", "test", None)
    assert time.perf_counter() - start < 2.0


def test_models_table_shows_every_name_and_label_whole_on_an_80_column_terminal() -> None:
    entries = json.loads(CliRunner().invoke(cli, ["models", "--json"]).stdout)
    names = [e["name"] for e in entries]
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    cells = {cell.strip().removesuffix(" (default)") for line in lines for cell in line.split("│")[1:2]}
    assert set(names) <= cells  # each name in its own line of the name column, neither cut nor wrapped
    labels = {label for e in entries for label in e["labels"]}  # labels wrap between them, not inside one
    assert all(any(re.search(rf"[│ ]{re.escape(label)}[, ]", line) for line in lines) for label in labels)
    for e in entries:  # each language's license, once, under the table
        assert f"{e['lang']}: {license_names(e['license'])}" in lines[-1]


def test_models_lists_every_shipped_choice_and_model_takes_its_names() -> None:
    result = CliRunner().invoke(cli, ["models", "--json"])
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    for entry in entries.values():
        assert {"name", "lang", "labels", "files"} <= set(entry) and entry["files"]
        assert all(f["bytes"] > 0 for f in entry["files"])
    if "uk_lstm" not in entries:
        pytest.skip("no uk BiLSTM shipped")
    # uk's default is its BERT averaged with its BiLSTM, chosen on validation (tests/test_assets.py)
    assert entries["uk"]["default"] and entries["uk"]["files"] == entries["uk_bert+lstm"]["files"]
    # an average's test F1 is listed too (recorded in tagger.shipped; tests/test_assets.py re-measures it)
    assert entries["uk"]["test_f1"] == entries["uk_bert+lstm"]["test_f1"] == AVERAGE_TEST_F1["uk_bert+lstm"]
    if "uk13" in entries:  # two BERTs, the 13-type one read in uk's four types: listed, not the default
        assert [f["file"] for f in entries["uk_bert+uk13"]["files"]] == ["uk_bert.onnx", "uk13_bert.onnx"]
        assert entries["uk_bert+uk13"]["labels"] == entries["uk_bert"]["labels"]
        # an average inherits every member's data license, each clause once
        average, members = entries["uk_bert+uk13"]["license"], (entries["uk_bert"]["license"], entries["uk13"]["license"])
        assert average == joined_licenses(members) and all(m in average for m in members)
        assert entries["uk_bert+uk13"]["weights"] == [0.5, 0.5] and entries["uk_bert+uk13"]["arch"] == "bert+uk13"
        triple = entries["uk_bert+uk13+lstm"]  # all three, chosen on validation: listed, not the default
        assert [f["file"] for f in triple["files"]] == ["uk_bert.onnx", "uk13_bert.onnx", "uk_lstm.onnx"]
        assert triple["weights"] == [0.34, 0.33, 0.33] and triple["labels"] == entries["uk_bert"]["labels"]
        assert triple["test_f1"] == AVERAGE_TEST_F1["uk_bert+uk13+lstm"] and not triple["default"]
    assert [f["file"] for f in entries["uk_bert+lstm"]["files"]] == ["uk_bert.onnx", "uk_lstm.onnx"]
    assert entries["uk_bert+lstm"]["weights"] == [0.6, 0.4]
    if "en" in entries:  # en's default is its BiLSTM alone; the average is listed as a choice of its own
        assert entries["en"]["files"] == entries["en_lstm"]["files"] and entries["en_bert+lstm"]["weights"] == [0.6, 0.4]
    assert entries["uk_lstm"]["labels"] == ["PERS", "ORG", "LOC", "MISC"] and entries["uk_lstm"]["test_f1"] > 0.5
    by_name = CliRunner().invoke(cli, ["tag", "--model", "uk_lstm", "--format", "jsonl"], input=TEXT)
    by_arch = CliRunner().invoke(cli, ["tag", "--lang", "uk", "--arch", "lstm", "--format", "jsonl"], input=TEXT)
    assert by_name.exit_code == 0 and by_name.stdout == by_arch.stdout
    assert "not a shipped model name" in assert_clean_error(CliRunner().invoke(cli, ["tag", "--model", "xx_gpt"], input=TEXT))
    if "uk13" in entries:  # the 13-type family: a uk model reached by its name, not by --lang
        assert entries["uk13"]["lang"] == "uk" and entries["uk13"]["files"] == entries["uk13_bert"]["files"]
        assert {"PERS", "ORG", "LOC", "DATE", "MON", "JOB", "DOC"} <= set(entries["uk13"]["labels"])
        dated = CliRunner().invoke(cli, ["tag", "--model", "uk13", "--format", "jsonl"],
                                   input="Міністр фінансів Сергій Марченко 5 березня 2024 року виділив 100 мільйонів гривень.")
        assert dated.exit_code == 0, dated.output
        assert {"JOB", "PERS", "DATE", "MON"} <= {e["label"] for e in json.loads(dated.stdout)["entities"]}


def test_licenses_join_each_clause_once_and_name_them_short() -> None:
    assert joined_licenses(["A (x) AND B (y)", "B (y)", "", "C (z)"]) == "A (x) AND B (y) AND C (z)"
    assert license_names("CC BY-NC-SA 4.0 (ner-uk) AND CC BY-NC-SA 4.0 (2.0) AND CC BY 4.0 (w)") == "CC BY-NC-SA 4.0 AND CC BY 4.0"


def test_a_model_is_scored_on_the_corpus_its_header_names(tmp_path: Path) -> None:
    """A parent folder (like ../shared/data) holds several corpora: a 13-type model's test split is
    ner-uk-2.0's, not ner-uk's, whose labels it does not tag."""
    from tagger.corpus import corpus_of, known_corpus, load_split

    for folder in ("ner-uk", "ner-uk-2.0"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "test.conll").write_text(f"Київ\tB-LOC\n{folder}\tO\n", encoding="utf-8")
    thirteen = known_corpus("Goader/ner-uk-2.0", "uk")
    assert thirteen.folder == "ner-uk-2.0" and known_corpus("benjamin/ner-uk", "uk") == corpus_of("uk")
    assert known_corpus("wnut_17", "uk") == corpus_of("uk")  # another language's corpus: not this model's
    assert load_split("uk", "test", tmp_path, thirteen)[0].words == ["Київ", "ner-uk-2.0"]
    assert load_split("uk", "test", tmp_path)[0].words == ["Київ", "ner-uk"]


def test_evaluate_refuses_a_corpus_annotated_in_another_scheme(tmp_path: Path) -> None:
    """A 4-type model on a 13-type split (or the reverse) would print scores that mean nothing."""
    try:
        nlp = tagger.load("uk", arch="lstm", device="cpu")
    except tagger.TaggerError:
        pytest.skip("no uk BiLSTM shipped")
    (tmp_path / "test.conll").write_text("Київ\tB-LOC\n5\tB-DATE\nтравня\tI-DATE\n", encoding="utf-8")
    (tmp_path / "labels.txt").write_text("O\nB-LOC\nI-LOC\nB-DATE\nI-DATE\n", encoding="utf-8")
    with pytest.raises(tagger.TaggerError, match="annotated with LOC, DATE; score it on a corpus in its own scheme"):
        tagger.evaluate(nlp, "test", tmp_path)
