"""The `tagger` command line through click's CliRunner, with the session's tiny exported model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conftest import CONLL, LABELS, TAGS, WORDS, assert_clean_error, silence_tracer_warnings, write_corpus
from tagger.cli import cli
from tagger.errors import ArtifactError
from tagger.scheme import tags_to_spans

# One sentence per line, words joined by single spaces: offsets are easy to compute by hand.
DOC = "".join(" ".join(words) + "\n" for words in WORDS)


def expected_entities(words_per_line: list[list[str]], tags_per_line: list[list[str]], base: int = 0) -> list[dict]:
    """Entities of text written as `DOC` is, with character offsets computed from the words."""
    entities = []
    offset = base
    for words, tags in zip(words_per_line, tags_per_line):
        starts = []
        position = offset
        for word in words:
            starts.append(position)
            position += len(word) + 1
        for span in tags_to_spans(tags):
            start, end = starts[span.start], starts[span.end - 1] + len(words[span.end - 1])
            entities.append({"start": start, "end": end, "label": span.label,
                             "text": " ".join(words[span.start : span.end])})
        offset = position  # past the newline
    return entities


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def model(exported: Path) -> str:
    return str(exported)


def jsonl(result: Result) -> list[dict]:
    """The JSONL records, each entity's score checked to be a probability and then set aside."""
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    for record in records:
        for entity in record["entities"]:
            assert 0.0 <= entity.pop("score") <= 1.0, entity
    return records


# --- tag -----------------------------------------------------------------------------------------


def test_tag_stdin_jsonl(runner: CliRunner, model: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl"], input=DOC)
    assert jsonl(result) == [{"source": "<stdin>", "entities": expected_entities(WORDS, TAGS)}]
    assert "tiny_lstm.onnx (lstm, uk) on CPU" in result.stderr
    assert result.stderr.count("\n") == 1  # one informational line; results go to stdout


def test_tag_defaults_to_jsonl_when_not_a_terminal(runner: CliRunner, model: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model], input=DOC)
    assert jsonl(result)[0]["entities"] == expected_entities(WORDS, TAGS)


def test_tag_files_one_document_each(runner: CliRunner, model: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(DOC, encoding="utf-8")
    b.write_text(" ".join(WORDS[2]), encoding="utf-8")
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl", str(a), str(b)])
    assert jsonl(result) == [
        {"source": str(a), "entities": expected_entities(WORDS, TAGS)},
        {"source": str(b), "entities": expected_entities(WORDS[2:], TAGS[2:])},
    ]


def test_tag_lines(runner: CliRunner, model: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl", "--lines"], input=DOC)
    assert jsonl(result) == [
        {"source": f"<stdin>:{i + 1}", "entities": expected_entities([w], [t])}
        for i, (w, t) in enumerate(zip(WORDS, TAGS))
    ]


def test_tag_jsonl_input(runner: CliRunner, model: str, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    records = [{"id": "first", "text": " ".join(WORDS[0])}, {"text": " ".join(WORDS[1])}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl", str(path)])
    assert jsonl(result) == [
        {"source": "first", "entities": expected_entities(WORDS[:1], TAGS[:1])},
        {"source": f"{path}:2", "entities": expected_entities(WORDS[1:2], TAGS[1:2])},
    ]


def test_tag_bad_jsonl_input_names_file_and_line(runner: CliRunner, model: str, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "Київ"}\n{"text": \n', encoding="utf-8")
    assert f"{path}:2: not valid JSON" in assert_clean_error(runner.invoke(cli, ["tag", "--model", model, str(path)]))


def test_tag_conll_format(runner: CliRunner, model: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "conll"], input=DOC)
    assert result.exit_code == 0, result.output
    assert result.stdout == "# source = <stdin>\n" + CONLL + "\n"


def test_tag_table_format(runner: CliRunner, model: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "table"], input=DOC)
    assert result.exit_code == 0, result.output
    assert "<stdin>: 6 entities" in result.stdout
    for entity in expected_entities(WORDS, TAGS):
        if len(entity["text"]) < 20:
            assert entity["text"] in result.stdout
    assert "MISC" in result.stdout and "PERS" in result.stdout


def test_entity_offsets_index_the_document_text(runner: CliRunner, model: str, tmp_path: Path) -> None:
    """BOM dropped, CRLF kept, tabs, astral characters: text == document[start:end] for every entity."""
    text = ("😀🇺🇦 " + " ".join(WORDS[0]) + "\r\n\r\n\t" + " ".join(WORDS[1]) + "\r\n"
            + "  ".join(WORDS[2]) + "  ще   раз:\tТарас Шевченко\r\n")
    path = tmp_path / "doc.txt"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (document,) = jsonl(runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl", str(path)]))
    entities = document["entities"]
    assert len(entities) >= 3  # the overfit model finds (most of) its training entities here too
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["text"], entity
        assert entity["label"] in {"PERS", "ORG", "LOC", "MISC"}
    assert [e["start"] for e in entities] == sorted(e["start"] for e in entities)
    assert "Тарас Шевченко" in {e["text"] for e in entities}


@pytest.mark.parametrize("text", ["", "   \n\t\n\r\n"])
def test_empty_and_blank_input_give_an_empty_result(runner: CliRunner, model: str, text: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl"], input=text)
    assert jsonl(result) == [{"source": "<stdin>", "entities": []}]
    for fmt, expected in (("conll", "# source = <stdin>\n"), ("table", "0 entities")):
        result = runner.invoke(cli, ["tag", "--model", model, "--format", fmt], input=text)
        assert result.exit_code == 0, result.output
        assert expected in result.stdout


def test_empty_file_and_empty_lines(runner: CliRunner, model: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert jsonl(runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl", str(empty)])) == [
        {"source": str(empty), "entities": []}
    ]
    result = runner.invoke(cli, ["tag", "--model", model, "--format", "jsonl", "--lines"], input="\n\n")
    assert jsonl(result) == [{"source": "<stdin>:1", "entities": []}, {"source": "<stdin>:2", "entities": []}]


def test_tag_invalid_utf8(runner: CliRunner, model: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes("Тарас Шевченко ".encode() + b"\xff\n")
    error = assert_clean_error(runner.invoke(cli, ["tag", "--model", model, str(path)]))
    assert f"byte offset {len('Тарас Шевченко '.encode())}" in error
    result = runner.invoke(cli, ["tag", "--model", model, "--encoding-errors", "replace", "--format", "conll", str(path)])
    assert result.exit_code == 0, result.output
    assert "\ufffd\tO" in result.stdout


def test_tag_missing_input_file(runner: CliRunner, model: str, tmp_path: Path) -> None:
    error = assert_clean_error(runner.invoke(cli, ["tag", "--model", model, str(tmp_path / "absent.txt")]))
    assert "absent.txt: no such file" in error


def test_device_cpu(runner: CliRunner, model: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model, "--device", "cpu", "--format", "jsonl"], input=DOC)
    assert jsonl(result)[0]["entities"] == expected_entities(WORDS, TAGS)
    assert "on CPU" in result.stderr


def test_device_cuda_without_a_gpu_is_a_one_line_error(runner: CliRunner, model: str) -> None:
    import onnxruntime as ort

    from tagger.runtime import CUDA, has_cuda_driver

    if CUDA in ort.get_available_providers() and has_cuda_driver():
        pytest.skip("an NVIDIA driver is present: --device cuda may work here")
    result = runner.invoke(cli, ["tag", "--model", model, "--device", "cuda"], input=DOC)
    error = assert_clean_error(result)
    assert "--device cuda" in error and "--device cpu" in error
    assert result.stdout == ""


def test_unknown_device_is_a_usage_error(runner: CliRunner, model: str) -> None:
    result = runner.invoke(cli, ["tag", "--model", model, "--device", "tpu"], input=DOC)
    assert result.exit_code == 2 and "Invalid value for '--device'" in result.stderr


# --- model errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["tag"], ["evaluate", "--json"]])
def test_missing_model_file(runner: CliRunner, tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "absent.onnx"
    error = assert_clean_error(runner.invoke(cli, [*command, "--model", str(missing)], input=DOC))
    assert str(missing) in error and "no such file" in error


def test_model_that_is_not_onnx(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_text("not a model", encoding="utf-8")
    assert "not a loadable ONNX model" in assert_clean_error(runner.invoke(cli, ["tag", "--model", str(path)], input=DOC))


def test_model_that_is_a_directory_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["tag", "--model", str(tmp_path)], input=DOC)
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_model_language_and_lang_disagree(runner: CliRunner, model: str) -> None:
    error = assert_clean_error(runner.invoke(cli, ["tag", "--model", model, "--lang", "en"], input=DOC))
    assert "'uk' model but --lang is 'en'" in error


@pytest.mark.parametrize("command", ["tag", "evaluate"])
def test_unknown_lang(runner: CliRunner, model: str, command: str) -> None:
    result = runner.invoke(cli, [command, "--model", model, "--lang", "de"], input=DOC)
    assert result.exit_code == 2
    assert "Invalid value for '--lang'" in result.stderr and "'uk'" in result.stderr
    assert "Traceback" not in result.output


# --- evaluate --------------------------------------------------------------------------------------

JSON_KEYS = {"micro", "macro_f1", "per_type", "token_accuracy", "sentences", "model", "errors"}


def test_evaluate_model_on_the_overfit_corpus(runner: CliRunner, model: str, session_corpus: Path) -> None:
    result = runner.invoke(cli, ["evaluate", "--data", str(session_corpus), "--model", model, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    assert report["micro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert report["macro_f1"] == 1.0 and report["token_accuracy"] == 1.0
    assert report["sentences"] == 3 and report["model"] == "tiny_lstm.onnx"
    assert list(report["per_type"]) == ["PERS", "ORG", "LOC", "MISC"]
    assert {k: v["support"] for k, v in report["per_type"].items()} == {"PERS": 2, "ORG": 1, "LOC": 2, "MISC": 1}


def test_evaluate_renders_tables(runner: CliRunner, model: str, session_corpus: Path) -> None:
    result = runner.invoke(cli, ["evaluate", "--data", str(session_corpus), "--model", model, "--split", "validation"])
    assert result.exit_code == 0, result.output
    assert "entity micro F1" in result.stdout and "1.0000" in result.stdout
    assert "validation split" in result.stdout


@pytest.mark.parametrize("layout", ["corpus folder", "parent of ner-uk/"])
def test_evaluate_finds_the_corpus_through_tagger_data(runner: CliRunner, model: str, tmp_path: Path, layout: str) -> None:
    """$TAGGER_DATA may name the corpus folder itself or a folder holding `ner-uk/`."""
    folder = write_corpus(tmp_path / "ner-uk")
    root = folder if layout == "corpus folder" else tmp_path
    result = runner.invoke(cli, ["evaluate", "--model", model, "--json"], env={"TAGGER_DATA": str(root)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["micro"]["f1"] == 1.0


# Predictions for the three inline sentences (gold: see conftest.CONLL), by hand:
#   s1 all right: PERS(0-2) LOC(4-5)
#   s2 B-ORG I-ORG I-ORG O O O O B-PERS O: ORG(0-3) wrong span, PERS(7-8) wrong type (gold LOC)
#   s3 all right: PERS(1-3) MISC(4-7)
#   gold 6 (PERS 2, ORG 1, LOC 2, MISC 1); predicted 6 (PERS 3, ORG 1, LOC 1, MISC 1); correct 4
#   micro P = 4/6, R = 4/6, F1 = 2/3
#   PERS P 2/3 R 2/2 F1 4/5; ORG 0 0 0; LOC P 1/1 R 1/2 F1 2/3; MISC 1 1 1
#   macro = (4/5 + 0 + 2/3 + 1) / 4 = 37/60
#   tokens 6 + 9 + 8 = 23; wrong: s2 positions 3, 4, 7 -> 20/23
PRED_TAGS = [
    TAGS[0],
    ["B-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O", "B-PERS", "O"],
    TAGS[2],
]


def predictions_file(path: Path, words: list[list[str]], tags: list[list[str]]) -> Path:
    """A predictions file with CRLF line ends, tab- and space-separated lines mixed."""
    lines = []
    for sentence_words, sentence_tags in zip(words, tags):
        for i, (w, t) in enumerate(zip(sentence_words, sentence_tags)):
            lines.append(f"{w}{' ' if i % 2 else chr(9)}{t}\r\n")
        lines.append("\r\n")
    path.write_bytes("".join(lines).encode("utf-8"))
    return path


def test_evaluate_predictions_file(runner: CliRunner, session_corpus: Path, tmp_path: Path) -> None:
    pred = predictions_file(tmp_path / "pred.conll", WORDS, PRED_TAGS)
    result = runner.invoke(cli, ["evaluate", "--data", str(session_corpus), "--predictions", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    approx = lambda x: pytest.approx(x, abs=1e-12)  # noqa: E731
    assert report["micro"] == {"precision": approx(2 / 3), "recall": approx(2 / 3), "f1": approx(2 / 3)}
    assert report["per_type"] == {
        "PERS": {"precision": approx(2 / 3), "recall": 1.0, "f1": approx(4 / 5), "support": 2},
        "ORG": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "LOC": {"precision": 1.0, "recall": 0.5, "f1": approx(2 / 3), "support": 2},
        "MISC": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1},
    }
    assert report["macro_f1"] == approx(37 / 60)
    assert report["token_accuracy"] == approx(20 / 23)
    assert report["sentences"] == 3 and report["model"] == str(pred)


def test_evaluate_gold_as_predictions_scores_one(runner: CliRunner, session_corpus: Path) -> None:
    result = runner.invoke(cli, ["evaluate", "--data", str(session_corpus), "--split", "train",
                                 "--predictions", str(session_corpus / "train.conll"), "--json"])
    assert json.loads(result.stdout)["micro"]["f1"] == 1.0


@pytest.mark.parametrize(
    ("words", "tags", "line", "match"),
    [
        # sentence 2 lacks its last word: its first line is 6 words + 1 blank + 1 = line 8
        ([WORDS[0], WORDS[1][:-1], WORDS[2]], [TAGS[0], TAGS[1][:-1], TAGS[2]], 8, "sentence 2 has 8 tokens but the gold sentence has 9"),
        # only two sentences: the error points at the last one read (line 8)
        (WORDS[:2], TAGS[:2], 8, "2 sentences but the gold split has 3"),
        # an unknown label on line 9 (sentence 2, second word)
        (WORDS, [TAGS[0], ["B-ORG", "I-GPE", *TAGS[1][2:]], TAGS[2]], 9, "unknown label 'I-GPE'"),
    ],
    ids=["length mismatch", "too few sentences", "unknown label"],
)
def test_evaluate_bad_predictions_name_file_and_line(
    runner: CliRunner, session_corpus: Path, tmp_path: Path,
    words: list[list[str]], tags: list[list[str]], line: int, match: str,
) -> None:
    pred = predictions_file(tmp_path / "pred.conll", words, tags)
    result = runner.invoke(cli, ["evaluate", "--data", str(session_corpus), "--predictions", str(pred)])
    error = assert_clean_error(result)
    assert error.startswith(f"Error: {pred}:{line}: ") and match in error


def test_evaluate_too_many_predicted_sentences(runner: CliRunner, session_corpus: Path, tmp_path: Path) -> None:
    pred = predictions_file(tmp_path / "pred.conll", [*WORDS, ["зайве"]], [*TAGS, ["O"]])
    error = assert_clean_error(runner.invoke(cli, ["evaluate", "--data", str(session_corpus), "--predictions", str(pred)]))
    assert f"{pred}:" in error and "4 sentences but the gold split has 3" in error


@pytest.mark.parametrize("use_model", [True, False], ids=["model", "predictions"])
def test_evaluate_without_local_data_offline(runner: CliRunner, model: str, tmp_path: Path, use_model: bool) -> None:
    pred = predictions_file(tmp_path / "pred.conll", WORDS, TAGS)
    source = ["--model", model] if use_model else ["--predictions", str(pred)]
    result = runner.invoke(cli, ["evaluate", *source, "--json"],
                           env={"TAGGER_DATA": None, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    error = assert_clean_error(result)
    assert "--data" in error and "TAGGER_DATA" in error


def test_evaluate_data_folder_without_a_corpus(runner: CliRunner, model: str, tmp_path: Path) -> None:
    error = assert_clean_error(runner.invoke(cli, ["evaluate", "--model", model, "--data", str(tmp_path)]))
    assert "no ner-uk corpus there" in error


def test_evaluate_real_test_split_against_itself(runner: CliRunner) -> None:
    from conftest import shared_corpus

    folder = shared_corpus("ner-uk")
    result = runner.invoke(cli, ["evaluate", "--data", str(folder), "--predictions", str(folder / "test.conll"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sentences"] == 717 and report["micro"]["f1"] == 1.0
    assert {k: v["support"] for k, v in report["per_type"].items()} == {"PERS": 217, "ORG": 38, "LOC": 78, "MISC": 33}


# --- train and export -------------------------------------------------------------------------------


def test_help_lists_all_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("tag", "evaluate", "train", "export"):
        assert f"  {command}" in result.stdout


def test_train_help_lists_config_options(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["train", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--hidden", "--layers", "--epochs", "--lr", "--data", "--out", "--word-dropout", "--max-train-sentences"):
        assert option in result.stdout


def test_train_rejects_a_bad_option_value(runner: CliRunner, tmp_path: Path) -> None:
    data = write_corpus(tmp_path / "corpus")
    result = runner.invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "out"), "--dropout", "1.5"])
    assert result.exit_code == 2 and "dropout" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out" / "best_lstm.pth").exists()


def test_train_then_export_then_tag(runner: CliRunner, tmp_path: Path) -> None:
    import warnings

    data = write_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    result = runner.invoke(cli, [
        "train", "--data", str(data), "--out", str(out), "--device", "cpu", "--hidden", "8", "--layers", "1",
        "--epochs", "2", "--word-dim", "8", "--char-dim", "4", "--char-filters", "8", "--case-dim", "2",
    ])
    assert result.exit_code == 0, result.output
    checkpoint = out / "best_lstm.pth"
    assert checkpoint.is_file() and (out / "best_lstm_curves.png").is_file()
    assert "best epoch" in result.stderr and result.stdout == ""
    with warnings.catch_warnings():
        silence_tracer_warnings()
        result = runner.invoke(cli, ["export", str(checkpoint)])
        assert result.exit_code == 0, result.output
        assert (out / "best_lstm.onnx").is_file() and "wrote" in result.stderr and "tags identical" in result.stderr
        other = tmp_path / "other.onnx"
        assert runner.invoke(cli, ["export", str(checkpoint), "-o", str(other)]).exit_code == 0
    result = runner.invoke(cli, ["tag", "--model", str(other), "--format", "conll"], input=DOC)
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.stdout.splitlines() if "\t" in line] == [w for s in WORDS for w in s]
    assert all(line.split("\t")[1] in LABELS for line in result.stdout.splitlines() if "\t" in line)


def test_export_of_one_onnx_file_says_it_is_exported_already(runner: CliRunner, model: str) -> None:
    error = assert_clean_error(runner.invoke(cli, ["export", model]))
    assert "already an exported model; export takes a checkpoint" in error
    from tagger.train.checkpoint import load_checkpoint  # --init reads checkpoints the same way

    with pytest.raises(ArtifactError, match="already an exported model"):
        load_checkpoint(model)


def test_export_missing_checkpoint_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["export", str(tmp_path / "absent.pth")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_export_a_file_that_is_not_a_checkpoint(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    error = assert_clean_error(runner.invoke(cli, ["export", str(path)]))
    assert str(path) in error
    assert not (tmp_path / "model.onnx").exists()
