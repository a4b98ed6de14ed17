"""--teacher: a BERT learns an exported model's label marginals (posterior distillation)."""

from __future__ import annotations

import io
import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from conftest import LABELS, WORDS, Trained, quiet_export, tiny_bert_config, train_tiny
from tagger.artifact import load_artifact
from tagger.errors import TaggerError
from tagger.info import describe
from tagger.predict import Tagger
from tagger.render import info_table
from tagger.train.checkpoint import load_checkpoint
from tagger.train.config import TrainConfig
from tagger.train.crf import CRF
from tagger.train.distill import Teacher

pytestmark = pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning")


def test_crf_marginals_are_those_of_every_path_enumerated() -> None:
    torch.manual_seed(0)
    crf = CRF(3)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    emissions, lengths = torch.randn(3, 4, 3), [4, 2, 1]
    mask = torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]
    got = crf.log_marginals(emissions, mask)
    for b, n in enumerate(lengths):
        paths = list(itertools.product(range(3), repeat=n))
        score = torch.stack([crf.start[p[0]] + crf.end[p[-1]] + sum(emissions[b, t, p[t]] for t in range(n))
                             + sum(crf.transitions[p[t - 1], p[t]] for t in range(1, n)) for p in paths])
        for t, label in itertools.product(range(n), range(3)):
            chosen = torch.tensor([p[t] == label for p in paths])
            want = torch.logsumexp(score[chosen], 0) - torch.logsumexp(score, 0)
            assert torch.allclose(got[b, t, label], want, atol=1e-5), (b, t, label)
        assert torch.all(got[b, n:] == 0)  # padding


def test_teacher_targets_come_in_the_students_label_order() -> None:
    class Fixed:  # a stand-in Ensemble: log probabilities in its own label order
        labels = ["O", "B-X", "I-X"]

        def emit(self, sentences: list[list[str]], runs: None) -> list[np.ndarray]:
            return [np.log(np.array([[0.7, 0.2, 0.1]] * len(s), np.float32)) for s in sentences]

    targets = Teacher("fixed", Fixed(), []).targets([["a", "b"]], ["B-X", "I-X", "O"])
    assert targets[0].shape == (2, 3) and np.allclose(targets[0], [[0.2, 0.1, 0.7]] * 2)


def test_a_student_taught_alone_by_its_teacher_tags_as_it_and_records_it(
        trained_bert: Trained, exported_bert: Path, session_corpus: Path, tiny_encoder: Path, tmp_path: Path) -> None:
    """--distill 1: no gold tag reaches the loss, so the student's tags can only come from the teacher."""
    out = tmp_path / "student"
    config = tiny_bert_config(session_corpus, out, tiny_encoder, crf=True, teacher=(str(exported_bert),), distill=1.0)
    run = train_tiny(config, out)
    log = " ".join(run.log.split())
    assert f"teacher {exported_bert} labels the 3 training sentences once" in log
    assert f"taught by {exported_bert} (1 of the loss)" in log
    student = Tagger(load_artifact(quiet_export(run.checkpoint, tmp_path / "student.onnx").path, device="cpu"))
    teacher = Tagger(load_artifact(exported_bert, device="cpu"))
    assert student.tag(WORDS) == teacher.tag(WORDS)
    data = load_checkpoint(run.checkpoint)["data"]
    first = load_checkpoint(trained_bert.checkpoint)["data"]
    [record] = data["teachers"]
    assert record["checkpoint"] == exported_bert.name and record["weight"] == 1
    assert record["training_corpora"] == first["training_corpora"] and record["validation_held_out"] is True
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(info_table(describe(student.artifact)))
    assert f"; distilled from {exported_bert.name} (1)" in console.file.getvalue()


def test_a_teacher_of_other_labels_or_options_out_of_place_are_refused(
        exported_bert: Path, session_corpus: Path, tiny_encoder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(session_corpus, other)
    (other / "labels.txt").write_text("\n".join([*LABELS, "B-DATE", "I-DATE"]) + "\n", encoding="utf-8")
    with pytest.raises(TaggerError, match=r"^--teacher .*tiny_bert.onnx tags .*; distil from models of --data's label set"):
        train_tiny(tiny_bert_config(other, tmp_path / "out", tiny_encoder, teacher=(str(exported_bert),)), tmp_path / "out")
    with pytest.raises(ValueError, match="teacher is for --arch bert"):
        TrainConfig(arch="lstm", teacher=("a.onnx",))
    with pytest.raises(ValueError, match="teacher_weights weighs --teacher models"):
        TrainConfig(arch="bert", teacher_weights="0.5,0.5")
    with pytest.raises(ValueError, match=r"distill must be in \(0, 1\]"):
        TrainConfig(arch="bert", teacher=("a.onnx",), distill=0.0)
