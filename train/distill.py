"""A teacher for `tagger train --teacher`: exported models whose label probabilities a BERT learns too.

Posterior distillation (Wang et al. 2020, "Structure-level knowledge distillation for multilingual
sequence labeling"): next to the gold tags' likelihood, the student's per-word label marginals (under
its CRF, by forward-backward) learn the teacher's. The teacher is one exported model or several
averaged (`tagger.ensemble`: e.g. the 12-layer uk BERT with the 13-type one read in four types), so a
smaller or single model can learn what an average knows. It reads the training text once, before
the first epoch, through ONNX Runtime as `tagger tag` would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from tagger.errors import TaggerError

if TYPE_CHECKING:
    from tagger.ensemble import Ensemble


@dataclass(frozen=True)
class Teacher:
    """Loaded teacher models, averaged, and what each was trained on (for the leak check and the record)."""

    name: str  # as --teacher named it
    tagger: Ensemble
    records: list[dict[str, Any]]

    def targets(self, sentences: Sequence[Sequence[str]], labels: Sequence[str]) -> list[np.ndarray]:
        """Each sentence's (words, labels) probabilities, columns in `labels`' order."""
        order = [self.tagger.labels.index(label) for label in labels]
        return [np.exp(log_probs[:, order]).astype(np.float32) for log_probs in self.tagger.emit(sentences, None)]


def load_teacher(specs: Sequence[str], weights: str, labels: Sequence[str], device: str) -> Teacher:
    """The models `specs` names (files, or names `tagger models` lists), averaged with `weights`
    ('0.5,0.5'; '': a shipped average's own, else equal).

    Raises:
        TaggerError: a model can't be loaded, the weights don't fit, or the teacher's labels are not `labels`.
    """
    from tagger.ensemble import Ensemble, load_tagger, parse_weights
    from tagger.info import recorded_test_f1, resolve_models
    from tagger.predict import Tagger
    from tagger.scheme import entity_types

    paths, chosen = resolve_models(specs, parse_weights(weights) if weights else None)
    loaded = load_tagger(paths, device, chosen)
    # Marginals even from one model: an Ensemble of it (a lone Tagger's scores are raw emissions).
    ensemble = loaded if isinstance(loaded, Ensemble) else Ensemble([cast(Tagger, loaded)])  # one path: a Tagger
    name = " + ".join(specs)
    if sorted(ensemble.labels) != sorted(labels):
        raise TaggerError(f"--teacher {name} tags {', '.join(entity_types(ensemble.labels))}, the training data"
                          f" {', '.join(entity_types(labels))}; distil from models of --data's label set (an average"
                          " may add a ner-uk 2.0 model after one of them)")
    records = []
    for artifact, weight in zip(ensemble.artifacts, ensemble.weights):
        data = artifact.header.get("provenance", {}).get("data", {})
        records.append({"checkpoint": artifact.path.name, "weight": round(weight, 4), "labels": list(artifact.labels),
                        "corpus": data.get("corpus"), "license": data.get("license"),
                        "validation_held_out": data.get("validation_held_out"),
                        "training_corpora": data.get("training_corpora"), "test_f1": recorded_test_f1(artifact.header),
                        **{k: data[k] for k in ("init", "teachers") if data.get(k)}})
    return Teacher(name, ensemble, records)


def distilled(gold: torch.Tensor, log_marginals: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
              weight: float, per_sentence: bool) -> torch.Tensor:
    """(1 - weight) * the gold loss + weight * the cross-entropy of the student's label marginals
    against the teacher's (summed over a sentence's words and averaged over sentences where the gold
    loss is a sentence likelihood, else averaged over words)."""
    taught = -(targets * log_marginals).sum(2)  # (batch, words); padding rows of targets are 0
    taught = taught.sum(1).mean() if per_sentence else taught[mask].mean()
    return (1 - weight) * gold + weight * taught
