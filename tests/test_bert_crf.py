"""BERT with a CRF layer (--crf): trained by the sentence likelihood, exported with its transitions."""

from __future__ import annotations

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import LABELS, TAGS, WORDS, Trained, quiet_export, tiny_bert_config, train_tiny
from tagger.artifact import load_artifact
from tagger.conll import Sentence
from tagger.predict import Tagger, tag_with
from train.bert import build_bert
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.recipes import bert_recipe, bert_torch_emitter, crf_decoder

pytestmark = pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning")

ENSEMBLE_SCRIPT = Path(__file__).parents[1] / "scripts" / "ensemble.py"


@pytest.fixture(scope="module")
def trained_crf(session_corpus: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("trained-crf")
    return train_tiny(tiny_bert_config(session_corpus, out, tiny_encoder, crf=True), out)


@pytest.fixture(scope="module")
def crf_tagger(trained_crf: Trained, tmp_path_factory: pytest.TempPathFactory) -> Tagger:
    out = tmp_path_factory.mktemp("exported-crf") / "crf.onnx"
    quiet_export(trained_crf.checkpoint, out)  # refuses to write unless ONNX tags equal torch's
    return Tagger(load_artifact(out, device="cpu"))


def test_crf_is_a_bert_option() -> None:
    with pytest.raises(ValueError, match="crf is for --arch bert"):
        TrainConfig(arch="lstm", crf=True)


def test_the_crf_loss_reads_each_word_at_its_first_piece(session_corpus: Path, tiny_encoder: Path, tmp_path: Path) -> None:
    """With its transitions at zero (as a CRF starts), the sentence NLL is the sum of the words'
    cross-entropies: the CRF loss of a batch equals the plain loss times words per sentence."""
    train_set = [Sentence(w, t) for w, t in zip(WORDS, TAGS)]
    losses = {}
    for crf in (False, True):
        torch.manual_seed(0)  # the same classifier weights in both
        config = tiny_bert_config(session_corpus, tmp_path, tiny_encoder, crf=crf)
        recipe = bert_recipe(config, train_set, LABELS, torch.device("cpu"))
        recipe.model.eval()
        batch = recipe.plan(random.Random(0))[0]
        with torch.no_grad():
            losses[crf] = float(recipe.loss(batch))
    words = sum(w.end - w.start for w in batch)
    assert losses[True] == pytest.approx(losses[False] * words / len(batch), rel=1e-4)


def test_trains_learns_transitions_and_exports_them(trained_crf: Trained, crf_tagger: Tagger) -> None:
    assert trained_crf.result.validation_f1 == 1.0 and ", CRF" in trained_crf.log
    model, subwords = build_bert(load_checkpoint(trained_crf.checkpoint))
    assert model.crf is not None and float(model.crf.transitions.detach().abs().max()) > 0.05  # it learned, not stayed at zero
    header = crf_tagger.artifact.header
    assert np.allclose(header["crf"]["transitions"], model.crf.transitions.detach().numpy(), atol=1e-6)
    assert "CRF transitions" in header["decoding"]
    assert crf_tagger.tag(WORDS) == TAGS
    # Inference decodes with the CRF's scores: the same tags as torch emissions + the torch CRF.
    shuffled = [list(reversed(s)) for s in WORDS] + [[w for s in WORDS for w in s]]
    torch_tags = tag_with(bert_torch_emitter(model, subwords, len(LABELS)), crf_decoder(model, LABELS), LABELS, shuffled)
    assert crf_tagger.tag(shuffled) == torch_tags
    exported, trained = crf_tagger.decoder.transitions, crf_decoder(model, LABELS).transitions
    assert np.allclose(exported[np.isfinite(exported)], trained[np.isfinite(trained)])


def test_a_checkpoint_from_before_the_option_loads_without_a_crf(trained_crf: Trained) -> None:
    checkpoint = load_checkpoint(trained_crf.checkpoint)
    checkpoint["config"] = {k: v for k, v in checkpoint["config"].items() if k != "crf"}
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("crf.")}
    model, _ = build_bert(checkpoint)
    assert model.crf is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here; run where one is lent")
@pytest.mark.parametrize("options", [{}, {"crf": True, "document_context": True, "max_pieces": 16, "batch_size": 2}],
                         ids=["plain", "crf-doc"])
def test_trains_on_cuda_in_bf16_and_the_checkpoint_tags_on_the_cpu(
    session_corpus: Path, tiny_encoder: Path, tmp_path: Path, options: dict[str, object]
) -> None:
    """`--device cuda` with the default precision (bf16 autocast on a GPU that runs it) overfits the
    inline sentences, and the checkpoint it writes rebuilds on the CPU and tags them all right."""
    config = tiny_bert_config(session_corpus, tmp_path, tiny_encoder, device="cuda", precision="auto", **options)
    run = train_tiny(config, tmp_path)
    assert "device cuda" in run.log and "bfloat16 training" in run.log
    assert run.result.validation_f1 == 1.0
    # Loaded as saved (no map_location): the weights were written as CPU tensors, so a machine without a GPU reads them.
    stored = torch.load(run.checkpoint, weights_only=True)["state_dict"]
    assert all(t.device.type == "cpu" for t in stored.values())
    model, subwords = build_bert(load_checkpoint(run.checkpoint))
    assert tag_with(bert_torch_emitter(model, subwords, len(LABELS)), crf_decoder(model, LABELS), LABELS, WORDS) == TAGS


@pytest.fixture(scope="module")
def other_crf(session_corpus: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Tagger:
    """A second CRF model of the same recipe, from another seed: other scores, same tags."""
    out = tmp_path_factory.mktemp("other-crf")
    trained = train_tiny(tiny_bert_config(session_corpus, out, tiny_encoder, crf=True, seed=7), out)
    quiet_export(trained.checkpoint, out / "crf7.onnx")
    return Tagger(load_artifact(out / "crf7.onnx", device="cpu"))


def test_ensemble_averages_scores_and_transitions(crf_tagger: Tagger, other_crf: Tagger) -> None:
    spec = importlib.util.spec_from_file_location("ensemble", ENSEMBLE_SCRIPT)
    ensemble = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ensemble)
    words = WORDS + [[]]
    (first, second), mean, decoder = ensemble.averaged([crf_tagger, other_crf], words)
    assert not np.allclose(first[0], second[0])  # two different models, so the mean is neither
    for k in range(len(WORDS)):
        assert np.allclose(mean[k], (first[k] + second[k]) / 2)
    assert mean[-1].size == 0
    both = (crf_tagger.decoder.transitions + other_crf.decoder.transitions) / 2
    finite = np.isfinite(both)
    assert np.allclose(decoder.transitions[finite], both[finite])
    assert np.array_equal(np.isfinite(decoder.transitions), finite)  # IOB2 constraints kept
    assert tag_with(lambda _: mean, decoder, LABELS, words) == TAGS + [[]]


def test_ensemble_script_prints_scores_and_refuses_mixed_recipes(crf_tagger: Tagger, other_crf: Tagger,
                                                                 exported_bert: Path, session_corpus: Path) -> None:
    models = [str(crf_tagger.artifact.path), str(other_crf.artifact.path)]
    done = subprocess.run([sys.executable, str(ENSEMBLE_SCRIPT), "--data", str(session_corpus), *models],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert len(lines) == 3 and lines[2].startswith("test ensemble of 2:") and lines[2].endswith("micro F1 1.0000")
    for bad in ([models[0], str(exported_bert)], [models[0], str(session_corpus / "missing.onnx")]):
        refused = subprocess.run([sys.executable, str(ENSEMBLE_SCRIPT), "--data", str(session_corpus), *bad],
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
