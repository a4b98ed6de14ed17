"""Training on several corpora: `--extra-train` adds train splits, checked and recorded."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from rich.console import Console  # noqa: E402

from conftest import SHARED, assert_clean_error, quiet_export, tiny_config, train_tiny, write_corpus  # noqa: E402
from tagger.artifact import load_artifact  # noqa: E402
from tagger.cli import cli  # noqa: E402
from tagger.errors import TaggerError  # noqa: E402
from tagger.render import info_table  # noqa: E402
from tagger.train.data import load_splits  # noqa: E402

# Two more sentences in the same scheme, none of them in the main corpus.
MORE = "Олена\tB-PERS\nПчілка\tI-PERS\nжила\tO\nв\tO\nКиєві\tB-LOC\n.\tO\n\nУкрзалізниця\tB-ORG\nпрацює\tO\n.\tO\n"
DOCUMENTS = "split\tdocument\tsentences\ttokens\n"


def documents(folder: Path, rows: list[tuple[str, str, int, int]]) -> None:
    """A documents.tsv: (split, document, sentences, tokens) per document."""
    (folder / "documents.tsv").write_text(DOCUMENTS + "".join("\t".join(map(str, r)) + "\n" for r in rows),
                                          encoding="utf-8")


def test_extra_corpora_add_their_train_split_and_are_recorded_in_checkpoint_and_header(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")
    extra = write_corpus(tmp_path / "ner-uk-2.0-4types", MORE)  # a known corpus, by its folder name
    run = train_tiny(tiny_config(main, tmp_path / "out", epochs=3, extra_train=(str(extra),)), tmp_path / "out")
    assert "ner-uk-2.0-4types" in run.log and "(5 train / 3 validation sentences" in run.log
    data = load_artifact(quiet_export(run.checkpoint, tmp_path / "m.onnx").path, "cpu").header["provenance"]["data"]
    assert [(c["corpus"], c["sentences"], c["source"]) for c in data["training_corpora"]] == [
        ("benjamin/ner-uk", 3, str(main)), ("ner-uk-2.0-4types", 2, str(extra))]
    assert data["sentences"] == {"train": 5, "validation": 3, "test": 3}
    assert data["license"].startswith("CC BY-NC-SA 4.0 (lang-uk ner-uk:") and " AND CC BY-NC-SA 4.0 (lang-uk ner-uk 2.0" \
        in data["license"]
    facts = json.loads(CliRunner().invoke(cli, ["info", str(tmp_path / "m.onnx"), "--json"]).output)
    assert facts["training_data"]["corpora"] == data["training_corpora"]
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(info_table(facts))
    assert "+ ner-uk-2.0-4types train (2 sentences)" in console.file.getvalue()


def test_validation_and_test_stay_the_main_corpus(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")
    extra = write_corpus(tmp_path / "extra", MORE)
    splits = load_splits("uk", main, [str(extra)])
    assert len(splits.train) == 5 and splits.validation == load_splits("uk", main).validation
    assert splits.test == load_splits("uk", main).test


def test_an_extra_corpus_in_another_label_scheme_is_refused(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")
    extra = write_corpus(tmp_path / "thirteen", "1\tO\nберезня\tB-DATE\n", ["O", "B-DATE", "I-DATE"])
    result = CliRunner().invoke(cli, ["train", "--data", str(main), "--extra-train", str(extra), "--out",
                                      str(tmp_path / "out"), "--epochs", "1"])
    error = assert_clean_error(result)
    assert f"--extra-train {extra}: its tags B-DATE are not in {main}'s label set" in error


def test_an_extra_corpus_that_holds_a_scored_document_is_refused(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")
    documents(main, [(split, f"{split}-doc", 3, 23) for split in ("train", "validation", "test")])
    extra = write_corpus(tmp_path / "extra", MORE)
    documents(extra, [("train", "news-1", 1, 6), ("train", "test-doc", 1, 3)])
    with pytest.raises(TaggerError, match=r"holds 1 document\(s\) of .*validation or test split \(test-doc, ...\)"):
        load_splits("uk", main, [str(extra)])
    documents(extra, [("train", "news-1", 1, 6), ("train", "train-doc", 1, 3)])  # main's train: allowed
    assert len(load_splits("uk", main, [str(extra)]).train) == 5


def test_an_extra_corpus_that_is_neither_a_folder_nor_a_known_hub_name_is_refused(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")
    with pytest.raises(TaggerError, match="neither a corpus folder .* nor a known Hub corpus .*Goader/ner-uk-2.0"):
        load_splits("uk", main, [str(tmp_path / "nowhere")])


def test_the_real_ner_uk_2_dev_documents_join_ner_uk_without_touching_its_scored_splits() -> None:
    """The shared data: ner-uk-2.0-4types adds 11,241 training sentences to ner-uk's; the 13-type
    ner-uk-2.0 cannot join a 4-type model."""
    main, extra, thirteen = SHARED / "ner-uk", SHARED / "ner-uk-2.0-4types", SHARED / "ner-uk-2.0"
    if not all((f / "train.conll").is_file() for f in (main, extra, thirteen)):
        pytest.skip(f"the ner-uk corpora are not under {SHARED}")
    alone = load_splits("uk", main)
    both = load_splits("uk", main, [str(extra)])
    assert len(both.train) == len(alone.train) + 11_241 and both.test == alone.test
    assert [c["corpus"] for c in both.corpora] == ["benjamin/ner-uk", "ner-uk-2.0-4types"]
    with pytest.raises(TaggerError, match="its tags B-ART, B-DATE, B-DOC"):
        load_splits("uk", main, [str(thirteen)])


def test_a_config_from_json_takes_the_extra_corpora_as_a_list(tmp_path: Path) -> None:
    from tagger.train.config import TrainConfig

    config = tiny_config(tmp_path, tmp_path, extra_train=["a", "b"])
    assert config.extra_train == ("a", "b") and TrainConfig.from_dict(config.to_dict()) == config
    taught = TrainConfig(arch="bert", teacher=["t.onnx"])
    assert taught.teacher == ("t.onnx",) and TrainConfig.from_dict(taught.to_dict()) == taught


def test_extra_documents_keeps_only_the_named_documents_and_records_the_choice(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")
    extra = write_corpus(tmp_path / "extra", MORE)
    documents(extra, [("train", "bruk/a1", 1, 6), ("train", "ng/b2", 1, 3)])
    splits = load_splits("uk", main, [str(extra)], "ng/")
    assert len(splits.train) == 4 and splits.train[-1].words == ["Укрзалізниця", "працює", "."]
    assert [splits.corpora[1][k] for k in ("source", "sentences", "documents", "documents_named")] == [
        str(extra), 1, 1, "ng/*"]
    with pytest.raises(TaggerError, match=r"--extra-documents news/: no train document of .* starts with it "
                                          r"\(its names start e.g. bruk/, ng/\)"):
        load_splits("uk", main, [str(extra)], "news/")
    (extra / "documents.tsv").unlink()
    with pytest.raises(TaggerError, match="documents.tsv: no such file"):
        load_splits("uk", main, [str(extra)], "ng/")
    with pytest.raises(TaggerError, match="--extra-documents ng/: Goader/ner-uk-2.0 is not a local corpus folder"):
        load_splits("uk", main, ["Goader/ner-uk-2.0"], "ng/")
    with pytest.raises(ValueError, match="name one with --extra-train"):
        tiny_config(main, tmp_path, extra_documents="ng/")


def test_the_ng_documents_of_ner_uk_2_are_its_new_texts() -> None:
    main, extra = SHARED / "ner-uk", SHARED / "ner-uk-2.0-4types"
    if not all((f / "train.conll").is_file() for f in (main, extra)):
        pytest.skip(f"the ner-uk corpora are not under {SHARED}")
    both = load_splits("uk", main, [str(extra)], "ng/")
    assert both.corpora[1]["documents"] == 186 and both.corpora[1]["documents_named"] == "ng/*"
    assert sum(len(s.words) for s in both.train) - sum(len(s.words) for s in load_splits("uk", main).train) == 59_257


def test_documents_keeps_the_named_train_and_validation_documents_and_the_whole_test_split(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")  # three sentences of 6, 9 and 8 words in each split
    documents(main, [(split, name, 1, tokens) for split in ("train", "validation", "test")
                     for name, tokens in (("bruk/a", 6), ("ng/b", 9), ("bruk/c", 8))])
    splits = load_splits("uk", main, documents="bruk/")
    assert [len(s.words) for s in splits.train] == [len(s.words) for s in splits.validation] == [6, 8]
    assert len(splits.test) == 3 and splits.corpora[0]["documents_named"] == "bruk/*"
    assert splits.corpora[0]["documents"] == 2
    with pytest.raises(TaggerError, match=r"^--documents news/: no train document of .* starts with it \(its names"
                                          r" start e.g. bruk/, ng/\); see its documents.tsv$"):
        load_splits("uk", main, documents="news/")
    (main / "documents.tsv").unlink()
    with pytest.raises(TaggerError, match=r"^--documents bruk/: .*documents.tsv: no such file; it picks documents"):
        load_splits("uk", main, documents="bruk/")


def test_training_on_named_documents_says_so_in_log_and_header(tmp_path: Path) -> None:
    main = write_corpus(tmp_path / "main")
    documents(main, [(split, name, 1, tokens) for split in ("train", "validation", "test")
                     for name, tokens in (("bruk/a", 6), ("ng/b", 9), ("bruk/c", 8))])
    run = train_tiny(tiny_config(main, tmp_path / "out", epochs=2, documents="bruk/"), tmp_path / "out")
    assert "(2 train / 2 validation sentences, documents bruk/*" in run.log.replace("\n", " ")
    facts = json.loads(CliRunner().invoke(cli, ["info", str(quiet_export(run.checkpoint, tmp_path / "m.onnx").path),
                                                "--json"]).output)
    assert facts["training_data"]["sentences"] == {"train": 2, "validation": 2, "test": 3}
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(info_table(facts))
    assert "; train and validation: documents bruk/* only" in console.file.getvalue()


def test_a_start_or_teacher_that_does_not_say_what_it_learned_from_is_refused() -> None:
    from tagger.train.data import Splits
    from tagger.train.loop import check_start

    splits = Splits([], [], [], [], [{"corpus": "benjamin/ner-uk"}])
    with pytest.raises(TaggerError, match="^--teacher t.onnx: its record does not say what it was trained on"):
        check_start({"checkpoint": "t.onnx"}, splits, "--teacher")
    # a record from before training_corpora: its main corpus is what it learned from
    with pytest.raises(TaggerError, match="^--init old.pth: it was trained on benjamin/ner-uk's validation split"):
        check_start({"checkpoint": "old.pth", "corpus": "benjamin/ner-uk", "validation_held_out": False}, splits)


@pytest.mark.parametrize(("learned", "held_out", "data", "refused"), [
    ("benjamin/ner-uk", True, "Goader/ner-uk-2.0", "it learned from benjamin/ner-uk, and ner-uk's train split holds 36"),
    ("ner-uk", True, "ner-uk-2.0", "it learned from ner-uk, and ner-uk's train split holds 36"),  # folder names too
    ("Goader/ner-uk-2.0", False, "Goader/ner-uk-2.0", "it was trained on Goader/ner-uk-2.0's validation split"),
    ("Goader/ner-uk-2.0", True, "Goader/ner-uk-2.0", None),  # a second stage on the same corpus
    ("Goader/ner-uk-2.0", True, "benjamin/ner-uk", None),  # its DEV documents are none of ner-uk's scored ones
    ("somewhere", True, "Goader/ner-uk-2.0", None),  # an unknown corpus is not taken for a known one
])
def test_a_first_stage_that_saw_what_this_run_scores_on_is_refused(learned: str, held_out: bool, data: str,
                                                                   refused: str | None) -> None:
    from tagger.train.data import Splits
    from tagger.train.loop import check_start

    start = {"checkpoint": "first.pth", "training_corpora": [{"corpus": learned}], "validation_held_out": held_out}
    splits = Splits([], [], [], [], [{"corpus": data}])
    stage2 = {"checkpoint": "second.pth", "training_corpora": [{"corpus": "ner-uk-2.0"}], "validation_held_out": True,
              "init": {k: v for k, v in start.items() if k != "checkpoint"}}  # a third stage, from a second one
    student = {"checkpoint": "student.onnx", "training_corpora": [{"corpus": "ner-uk-2.0"}], "validation_held_out": True,
               "teachers": [{"checkpoint": "x.onnx", "training_corpora": []}, stage2["init"]]}  # distilled from it
    for record, name, option in ((start, "first.pth", "--init"), (stage2, "second.pth", "--init"),
                                 (student, "student.onnx", "--teacher")):
        if refused is None:
            check_start(record, splits, option)
        else:
            with pytest.raises(TaggerError, match=f"^{option} {name}: {refused}"):
                check_start(record, splits, option)
