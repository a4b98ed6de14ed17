"""Tags for batches of tokenised sentences, from an artifact's ONNX session."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tagger.artifact import Artifact
from tagger.decode import Decoder
from tagger.errors import ArtifactError
from tagger.features import LstmVocab

MAX_WORDS = 400  # longer sentences are tagged in consecutive pieces, never truncated
BATCH_WORDS = 8192  # padded words per ONNX Runtime call
MAX_BATCH = 256  # sentences per call


class Tagger:
    """Predicts IOB2 tags with an artifact: encode, run the graph, Viterbi-decode."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        header = artifact.header
        if artifact.kind != "lstm":
            raise ArtifactError(f"{artifact.path}: model kind {artifact.kind!r} is not supported yet")
        try:
            self.vocab = LstmVocab.from_json(header["vocab"])
            crf = header.get("crf") or {}
            self.decoder = Decoder(
                artifact.labels,
                *(np.asarray(crf[k], np.float32) if k in crf else None for k in ("transitions", "start", "end")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ArtifactError(f"{artifact.path}: malformed tagger header ({err}); re-export it") from None
        self.output = str(header["output"])

    @property
    def labels(self) -> list[str]:
        """Labels in output order."""
        return self.artifact.labels

    def tag(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        """IOB2 tags of each sentence (any length, empty ones too), in input order."""
        pieces: list[tuple[int, Sequence[str]]] = []  # (sentence index, words)
        for i, words in enumerate(sentences):
            for start in range(0, len(words), MAX_WORDS):
                pieces.append((i, words[start : start + MAX_WORDS]))
        # Sort by length so each batch pads little; results go back to input order below.
        order = sorted(range(len(pieces)), key=lambda k: len(pieces[k][1]))
        piece_tags: list[list[str]] = [[] for _ in pieces]
        batch: list[int] = []
        for k in order:
            longest = len(pieces[k][1])
            if batch and (len(batch) >= MAX_BATCH or longest * (len(batch) + 1) > BATCH_WORDS):
                self._run(pieces, batch, piece_tags)
                batch = []
            batch.append(k)
        if batch:
            self._run(pieces, batch, piece_tags)
        tags: list[list[str]] = [[] for _ in sentences]
        for (i, _), piece in zip(pieces, piece_tags):
            tags[i].extend(piece)
        return tags

    def _run(
        self, pieces: list[tuple[int, Sequence[str]]], batch: list[int], out: list[list[str]]
    ) -> None:
        """Tag one batch of sentence pieces into `out`."""
        words = [pieces[k][1] for k in batch]
        inputs = self.vocab.encode(words)
        (emissions,) = self.artifact.session.run([self.output], inputs)  # (batch, seq_len, num_labels)
        paths = self.decoder.decode(emissions, [len(w) for w in words])
        labels = self.labels
        for k, path in zip(batch, paths):
            out[k] = [labels[i] for i in path]
