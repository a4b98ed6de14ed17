"""Several models as one tagger: their per-word label probabilities averaged, then constrained Viterbi.

A BiLSTM and a fine-tuned BERT err in different places, so their average usually beats either
(README, "Averaging": test F1 +0.9 points on uk and +1.6 on en, on average over pairings of seeds).
Raw scores can't be averaged across archs (a CRF's emissions and a softmax's logits differ in
scale), so each model's scores become probabilities first: the marginals of its own chain (its CRF
transitions, or the IOB2 constraints alone), by forward-backward (`Tagger.probabilities`; a file of
several heads gives the mean of theirs).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from pathlib import Path

import numpy as np

from tagger.artifact import Artifact, load_artifact
from tagger.decode import Decoder
from tagger.errors import ArtifactError, TaggerError
from tagger.predict import TINY, SentenceTagger, Tagger, labelled
from tagger.scheme import entity_types, projection_matrix


class Ensemble:
    """Taggers of one language and label set (or of schemes it can read as one), read as one: the
    weighted mean of their label probabilities, in the first member's labels."""

    def __init__(self, taggers: Sequence[Tagger], weights: Sequence[float] | None = None) -> None:
        if not taggers:
            raise ArtifactError("an ensemble needs at least one model")
        self.weights = normalised(weights, len(taggers))
        first = taggers[0].artifact
        # A member of another scheme that tagger knows how to read in the first's (ner-uk 2.0's 13
        # types as ner-uk's 4) joins through its type map: its labels' matrix onto the first's, and
        # the types each of the first's types reads as. None: the first's own labels.
        self.projections: list[np.ndarray | None] = [None]
        self.readings: list[dict[str, list[str]] | None] = [None]
        for tagger in taggers[1:]:
            other = tagger.artifact
            if other.language != first.language:
                raise ArtifactError(f"{other.path} is a {other.language!r} model but {first.path} is"
                                    f" {first.language!r}; average models of one language")
            types = None
            if other.labels != first.labels:
                types = projection_of(other.labels, first.labels)
                if types is None:
                    raise ArtifactError(f"{other.path} has other labels than {first.path} ({' '.join(other.labels)});"
                                        " average models of one label set, or of schemes tagger can read as one"
                                        " (ner-uk 2.0's 13 types as ner-uk's 4)")
            self.projections.append(None if types is None else projection_matrix(other.labels, first.labels, types))
            self.readings.append(None if types is None else readings(types))
        self.taggers = list(taggers)
        self.decoder = Decoder(first.labels)  # the probabilities already hold each model's transitions

    @property
    def labels(self) -> list[str]:
        """Labels in output order (the first member's)."""
        return self.taggers[0].labels

    @property
    def language(self) -> str:
        """Language code of the members."""
        return self.taggers[0].language

    @property
    def artifacts(self) -> list[Artifact]:
        """The members' model files."""
        return [t.artifact for t in self.taggers]

    @property
    def name(self) -> str:
        """The member files, as `a.onnx + b.onnx` (whole paths where two share a name; `a.onnx×0.6`
        where weights differ)."""
        paths = [a.path for a in self.artifacts]
        names = [p.name for p in paths] if len({p.name for p in paths}) == len(paths) else [str(p) for p in paths]
        if len(set(self.weights)) > 1:
            names = [f"{n}×{w:.3g}" for n, w in zip(names, self.weights)]
        return " + ".join(names)

    def emit(self, sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None) -> list[np.ndarray]:
        """log of the members' weighted mean probability of each label, per word."""
        return self.average([t.emit(sentences, runs) for t in self.taggers])

    def average(self, each: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
        """log of the weighted mean of the members' label marginals, from each member's word scores."""
        empty = np.zeros((0, len(self.labels)), np.float32)
        probs = [[w * (q if p is None else q @ p) if len(q) else empty for q in t.probabilities(e)]
                 for t, w, p, e in zip(self.taggers, self.weights, self.projections, each)]
        return [np.log(sum(p) + TINY).astype(np.float32) for p in zip(*probs)]

    def tag(self, sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None = None) -> list[list[str]]:
        """IOB2 tags of each sentence, as `Tagger.tag` gives them."""
        return labelled(self.decoder, self.labels, self.emit(sentences, runs))

    def tag_scored(self, sentences: Sequence[Sequence[str]],
                   runs: Sequence[Hashable] | None = None) -> tuple[list[list[str]], list[list[float]]]:
        """Tags as `tag` gives them, and each entity's score: the weighted mean of the members'
        probabilities of that exact span and label, each under its own chain."""
        each = [t.emit(sentences, runs) for t in self.taggers]
        tags = labelled(self.decoder, self.labels, self.average(each))
        member = [t.entity_scores(e, tags, r) for t, r, e in zip(self.taggers, self.readings, each)]
        scores = [[float(sum(w * p[k] for w, p in zip(self.weights, probs))) for k in range(len(probs[0]))]
                  for probs in zip(*member)]
        return tags, scores


def projection_of(source: Sequence[str], target: Sequence[str]) -> dict[str, str] | None:
    """The known type map of labels `source` onto `target` (tagger.corpus, imported only for it)."""
    from tagger.corpus import type_projection

    return type_projection(entity_types(source), entity_types(target))


def readings(types: dict[str, str]) -> dict[str, list[str]]:
    """Each target type and the source types that read as it: {'MISC': ['ART', 'DOC', 'MISC'], ...}."""
    out: dict[str, list[str]] = {}
    for source, target in types.items():
        out.setdefault(target, []).append(source)
    return out


def normalised(weights: Sequence[float] | None, count: int) -> list[float]:
    """Weights of `count` models scaled to sum to 1 (None: equal), or a TaggerError saying what is wrong."""
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise TaggerError(f"{len(weights)} weight{'s' * (len(weights) != 1)} for {count} model{'s' * (count != 1)};"
                          " give one weight per model")
    if not all(0 < w < math.inf for w in weights):  # NaN fails too
        raise TaggerError(f"weights {', '.join(map(str, weights))}: each must be a positive finite number")
    top = max(weights)
    scaled = [w / top for w in weights]  # first to at most 1, so the sum can't overflow
    total = math.fsum(scaled)
    return [w / total for w in scaled]


def parse_weights(text: str) -> list[float]:
    """'0.6,0.4' -> [0.6, 0.4], or a one-line TaggerError."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise TaggerError(f"weights {text!r}: give numbers separated by commas, one per model, e.g. 0.6,0.4") from None


def combined(taggers: Sequence[Tagger], weights: Sequence[float] | None = None) -> SentenceTagger:
    """One model as itself (Viterbi on its own scores), several as their Ensemble."""
    if len(taggers) != 1:
        return Ensemble(taggers, weights)  # which checks the weights (and refuses no models)
    normalised(weights, 1)  # refuse bad weights even where one model makes them moot
    return taggers[0]


def load_tagger(paths: Sequence[str | Path], device: str = "auto", weights: Sequence[float] | None = None,
                threads: int | None = None) -> SentenceTagger:
    """A tagger for one model file, or for several averaged (equal weights unless given)."""
    normalised(weights, len(paths))  # before the (slow) sessions load

    def tagger(path: str | Path) -> Tagger:
        return Tagger(load_artifact(path, device, threads))

    if len(paths) < 2:
        return combined([tagger(path) for path in paths], weights)
    # Sessions build mostly outside the GIL (graph optimisation, the INT8 weights widened): side by
    # side they start the uk default ~0.04 s sooner on 2 cores. map keeps the order and re-raises.
    from concurrent.futures import ThreadPoolExecutor  # here: a single model's start skips its import

    with ThreadPoolExecutor(len(paths)) as pool:
        return combined(list(pool.map(tagger, paths)), weights)
