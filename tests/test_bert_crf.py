"""BERT with a CRF layer (--crf): trained by the sentence likelihood, exported with its transitions."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import LABELS, TAGS, WORDS, Trained, quiet_export, tiny_bert_config, train_tiny
from tagger.artifact import load_artifact
from tagger.conll import Sentence
from tagger.predict import Tagger, tag_with
from tagger.train.checkpoint import load_checkpoint
from tagger.train.config import TrainConfig
from tagger.train.models import build_model
from tagger.train.recipes import BertRecipe
from tagger.train.scorers import bert_torch_emitter, crf_decoder

pytestmark = pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning")


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
        recipe = BertRecipe(config, train_set, LABELS, torch.device("cpu"))
        recipe.model.eval()
        batch = recipe.plan(random.Random(0))[0]
        with torch.no_grad():
            losses[crf] = float(recipe.loss(batch))
    words = sum(w.end - w.start for w in batch)
    assert losses[True] == pytest.approx(losses[False] * words / len(batch), rel=1e-4)


def test_trains_learns_transitions_and_exports_them(trained_crf: Trained, crf_tagger: Tagger) -> None:
    assert trained_crf.result.validation_f1 == 1.0 and ", CRF" in trained_crf.log
    model, subwords = build_model(load_checkpoint(trained_crf.checkpoint))
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
    model, _ = build_model(checkpoint)
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
    model, subwords = build_model(load_checkpoint(run.checkpoint))
    assert tag_with(bert_torch_emitter(model, subwords, len(LABELS)), crf_decoder(model, LABELS), LABELS, WORDS) == TAGS
