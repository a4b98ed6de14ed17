"""Tags for batches of tokenised sentences, from an artifact's ONNX session."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from tagger import subwords as subwords_module
from tagger.artifact import Artifact
from tagger.batching import length_batches, prefetched
from tagger.decode import Decoder
from tagger.errors import ArtifactError
from tagger.features import LstmEncoder
from tagger.header import Header, heads_of
from tagger.scheme import Span, tags_to_spans
from tagger.subwords import SubwordEncoder
from tagger.vocab import LstmVocab

MAX_WORDS = 400  # BiLSTM: longer sentences are scored in consecutive pieces, never truncated
# BiLSTM calls: small batches keep ONNX Runtime's LSTM and char features in cache; 512 x 64 ran the uk
# graph 1.2x faster than 2,048 x 256, and 8,192 words doubled the peak RSS.
BATCH_WORDS = 512  # padded words per BiLSTM call
MAX_BATCH = 64  # sentences per call
DECODE_WORDS = 2048  # padded words per Viterbi batch: numpy's cost is per step, so larger is cheaper
DECODE_BATCH = 256  # sentences per Viterbi batch
SCORE_WORDS = 1024  # padded words per forward-backward of the entity scores: its float64 tables stay small
TINY = 1e-12  # keeps log(0) finite where every model (or head) rules a label out

# Word scores of each sentence: a list of (words, num_labels) arrays.
EmitFn = Callable[[Sequence[Sequence[str]]], list[np.ndarray]]
# A graph's scores for its named inputs (ONNX Runtime's, or torch's while training and exporting).
GraphRun = Callable[[dict[str, np.ndarray]], np.ndarray]


def decode_all(decoder: Decoder, emissions: Sequence[np.ndarray]) -> list[list[int]]:
    """Viterbi label ids of every sentence's word scores, in length-sorted padded batches."""
    paths: list[list[int]] = [[] for _ in emissions]
    for batch, padded, lengths in padded_batches(emissions):
        for k, path in zip(batch, decoder.decode(padded, lengths)):
            paths[k] = path
    return paths


def marginals_all(decoder: Decoder, emissions: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each sentence's (words, num_labels) log-probabilities of each label, as `decode_all` batches."""
    out = list(emissions)  # empty ones stay as they are
    for batch, padded, lengths in padded_batches(emissions):
        for k, n, probs in zip(batch, lengths, decoder.log_marginals(padded, lengths)):
            out[k] = probs[:n]
    return out


def span_scores(decoder: Decoder, labels: Sequence[str], emissions: Sequence[np.ndarray],
                tags: Sequence[Sequence[str]], readings: Mapping[str, Sequence[str]] | None = None) -> list[list[float]]:
    """Each entity's probability (of its exact span and label) under `decoder`'s chain, per sentence,
    in the order `tags_to_spans` reads the entities (padded batches of SCORE_WORDS; sentences
    without entities need no forward-backward).

    `readings`: for a model of another scheme, the model's types each entity type reads as (MISC:
    ART, DOC, MISC); the entity's probability is the sum over them (disjoint events). None: its own.
    """
    index = {label: k for k, label in enumerate(labels)}

    def queries(span: Span) -> list[tuple[int, int, int, int]]:
        kinds = (span.label,) if readings is None else readings.get(span.label, ())
        return [(span.start, span.end, index[f"B-{kind}"], index[f"I-{kind}"]) for kind in kinds]

    entities = [[queries(s) for s in tags_to_spans(t)] for t in tags]
    spans = [[q for entity in found for q in entity] for found in entities]
    probs: list[list[float]] = [[] for _ in tags]
    with_entities = [k for k, found in enumerate(spans) if found]
    for batch, padded, lengths in padded_batches(emissions, SCORE_WORDS, with_entities):
        for k, sentence_probs in zip(batch, decoder.span_probabilities(padded, lengths, [spans[k] for k in batch])):
            probs[k] = sentence_probs
    out: list[list[float]] = []
    for asked, p in zip(entities, probs):  # each entity's queries are consecutive: sum them
        row, start = [], 0
        for entity in asked:
            row.append(float(sum(p[start : start + len(entity)])))
            start += len(entity)
        out.append(row)
    return out


def padded_batches(emissions: Sequence[np.ndarray], cells: int | None = None,
                   only: Sequence[int] | None = None) -> Iterator[tuple[list[int], np.ndarray, list[int]]]:
    """(indices, (batch, seq_len, num_labels) zero-padded scores, lengths) of the non-empty sentences
    (of `only` these, if given), at most `cells` padded words a batch [default: DECODE_WORDS]."""
    lengths = [len(e) for e in emissions]
    nonempty = [k for k in (range(len(emissions)) if only is None else only) if lengths[k]]
    for group in length_batches([lengths[k] for k in nonempty], DECODE_BATCH, cells or DECODE_WORDS):
        batch = [nonempty[g] for g in group]
        width = max(lengths[k] for k in batch)
        padded = np.zeros((len(batch), width, emissions[batch[0]].shape[1]), dtype=np.float32)
        for b, k in enumerate(batch):
            padded[b, : lengths[k]] = emissions[k]
        yield batch, padded, [lengths[k] for k in batch]


class OnnxRun:
    """The graph's scores for named inputs, from an ONNX Runtime session; a file of several heads
    gives theirs side by side on the last axis, so one run feeds them all."""

    def __init__(self, session: ort.InferenceSession, outputs: Sequence[str]) -> None:
        self.session = session
        self.outputs = list(outputs)

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Graph inputs -> the outputs, (batch, positions, heads * num_labels)."""
        found = self.session.run(self.outputs, inputs)
        return found[0] if len(found) == 1 else np.concatenate(found, axis=-1)


class LstmEmitter:
    """Word scores from a BiLSTM graph (ONNX, or torch while training); sentences over MAX_WORDS
    are scored in consecutive pieces. Each sentence is read alone, so `runs` change nothing."""

    def __init__(self, encoder: LstmEncoder, run: GraphRun) -> None:
        self.encoder = encoder
        self.run = run

    def __call__(self, sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None = None) -> list[np.ndarray]:
        """Each sentence's (words, num_labels) scores."""
        chunks = [(i, s) for i, words in enumerate(sentences) for s in range(0, len(words), MAX_WORDS)]
        texts = [sentences[i][s : s + MAX_WORDS] for i, s in chunks]
        scores: list[np.ndarray | None] = [None] * len(chunks)
        # Limits are read now (tests shrink them). A BiLSTM over a frozen encoder spends most of its
        # time in the encoder, so it batches by encoder pieces: sorted by words, tweets padded 1.85x.
        if self.encoder.context is None:
            batches = length_batches([len(t) for t in texts], MAX_BATCH, BATCH_WORDS)
        else:
            batches = length_batches(self.encoder.context_pieces(texts), MAX_BATCH, subwords_module.BATCH_PIECES)
        inputs = prefetched(lambda batch: self.encoder.encode([texts[k] for k in batch]), batches)
        for batch, feed in zip(batches, inputs):
            emissions = self.run(feed)  # (batch, seq_len, num_labels)
            for b, k in enumerate(batch):
                scores[k] = emissions[b, : len(texts[k])]
        out: list[list[np.ndarray]] = [[] for _ in sentences]
        for (i, _), score in zip(chunks, scores):
            out[i].append(score)  # type: ignore[arg-type]
        return [np.concatenate(parts) if parts else np.zeros((0, 0), np.float32) for parts in out]


class BertEmitter:
    """Word scores from a BERT graph (ONNX, or torch while training), each word read at its first
    piece through the encoder's windows; with document context, a run's sentences share windows."""

    def __init__(self, encoder: SubwordEncoder, run: GraphRun, num_labels: int) -> None:
        self.encoder = encoder
        self.run = run
        self.num_labels = num_labels

    def __call__(self, sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None = None) -> list[np.ndarray]:
        """Each sentence's (words, num_labels) scores."""
        return self.encoder.emissions(sentences, self.windows, self.num_labels, runs)

    def windows(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(windows, pieces) ids and 0/1 mask -> (windows, pieces, num_labels) scores."""
        return self.run({"input_ids": input_ids, "attention_mask": attention_mask})


def emitter_of(artifact: Artifact) -> LstmEmitter | BertEmitter:
    """The word scorer of an artifact's graph, for its arch: (words, heads * num_labels) per sentence."""
    header = artifact.header
    heads = heads_of(header)
    run = OnnxRun(artifact.session, [head["output"] for head in heads])
    if header["arch"] == "lstm":
        return LstmEmitter(LstmEncoder(LstmVocab.from_json(header["vocab"])), run)
    return BertEmitter(SubwordEncoder.from_json(header["subwords"]), run, len(heads) * len(header["labels"]))


def chain_decoder(labels: Sequence[str], crf: Mapping[str, Any] | None) -> Decoder:
    """The decoder of one chain: IOB2 constraints, plus its CRF's scores if it has them."""
    crf = crf or {}
    return Decoder(list(labels),
                   *(np.asarray(crf[k], np.float32) if k in crf else None for k in ("transitions", "start", "end")))


def head_decoders(header: Header) -> list[Decoder]:
    """One decoder per head of the file (one for a file of one model)."""
    return [chain_decoder(header["labels"], head.get("crf")) for head in heads_of(header)]


class SentenceTagger(Protocol):
    """What tags sentences: one model (`Tagger`) or several averaged (`tagger.ensemble.Ensemble`)."""

    @property
    def labels(self) -> list[str]: ...

    @property
    def language(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def artifacts(self) -> list[Artifact]: ...

    def tag(self, sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None = None) -> list[list[str]]: ...

    def tag_scored(self, sentences: Sequence[Sequence[str]],
                   runs: Sequence[Hashable] | None = None) -> tuple[list[list[str]], list[list[float]]]: ...


class Tagger:
    """Predicts IOB2 tags with an artifact: word scores from the graph, then constrained Viterbi.

    A file of several heads (seeds of one recipe sharing their inputs) is one model: the mean of its
    heads' label probabilities, each head's under its own chain, as an Ensemble of them would be, from
    one run of the graph."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        try:
            self.decoders = head_decoders(artifact.header)
            self.emit: LstmEmitter | BertEmitter = emitter_of(artifact)
        except Exception as err:  # noqa: BLE001 - bad values, a tokenizer that won't load (the keys were checked)
            raise ArtifactError(f"{artifact.path}: malformed tagger header ({type(err).__name__}: {err}"[:300]
                                + "); re-export it") from None
        # Several heads: Viterbi over their mean probabilities, which already hold each head's chain.
        self.decoder = self.decoders[0] if len(self.decoders) == 1 else Decoder(self.labels)

    @property
    def labels(self) -> list[str]:
        """Labels in output order."""
        return self.artifact.labels

    @property
    def language(self) -> str:
        """Language code of the model."""
        return self.artifact.language

    @property
    def name(self) -> str:
        """The model's file name."""
        return self.artifact.path.name

    @property
    def artifacts(self) -> list[Artifact]:
        """The model file, as a list (an Ensemble has several)."""
        return [self.artifact]

    def heads(self, emissions: Sequence[np.ndarray]) -> list[list[np.ndarray]]:
        """`emit`'s word scores split per head: [head][sentence] (words, num_labels)."""
        if len(self.decoders) == 1:
            return [list(emissions)]
        width = len(self.labels)
        return [[e[:, k * width : (k + 1) * width] for e in emissions] for k in range(len(self.decoders))]

    def probabilities(self, emissions: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Each sentence's (words, num_labels) probability of each label: the mean over heads of
        the marginals of each head's chain."""
        each = [marginals_all(d, e) for d, e in zip(self.decoders, self.heads(emissions))]
        if len(each) == 1:
            return [np.exp(m) for m in each[0]]
        return [sum(np.exp(m) for m in ms) / len(ms) if len(ms[0]) else ms[0] for ms in zip(*each)]

    def entity_scores(self, emissions: Sequence[np.ndarray], tags: Sequence[Sequence[str]],
                      readings: Mapping[str, Sequence[str]] | None = None) -> list[list[float]]:
        """Each entity's probability (its exact span and label), the mean over heads, as `span_scores`."""
        each = [span_scores(d, self.labels, e, tags, readings) for d, e in zip(self.decoders, self.heads(emissions))]
        if len(each) == 1:
            return each[0]
        return [[sum(p[k] for p in ps) / len(ps) for k in range(len(ps[0]))] for ps in zip(*each)]

    def scores(self, emissions: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        """What `self.decoder` reads: the graph's own scores (one head), or the log of the heads' mean
        probabilities."""
        if len(self.decoders) == 1:
            return emissions
        empty = np.zeros((0, len(self.labels)), np.float32)
        return [np.log(p + TINY).astype(np.float32) if len(p) else empty for p in self.probabilities(emissions)]

    def tag(self, sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None = None) -> list[list[str]]:
        """IOB2 tags of each sentence (any length, empty ones too), in input order.

        `runs`: each sentence's document id; a model trained with document context reads the
        consecutive sentences of a document together (None: all sentences are one document).
        """
        return labelled(self.decoder, self.labels, self.scores(self.emit(sentences, runs)))

    def tag_scored(self, sentences: Sequence[Sequence[str]],
                   runs: Sequence[Hashable] | None = None) -> tuple[list[list[str]], list[list[float]]]:
        """Tags as `tag` gives them, and each entity's probability under this model's chain
        (its CRF transitions, or the IOB2 constraints alone; the mean over heads), in `tags_to_spans` order."""
        emissions = self.emit(sentences, runs)
        tags = labelled(self.decoder, self.labels, self.scores(emissions))
        return tags, self.entity_scores(emissions, tags)


def tag_with(emit: EmitFn, decoder: Decoder, labels: Sequence[str], sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tags from any word scorer (ONNX Runtime here, torch during training) and one decoder."""
    return labelled(decoder, labels, emit(sentences))


def labelled(decoder: Decoder, labels: Sequence[str], emissions: Sequence[np.ndarray]) -> list[list[str]]:
    """The decoded tags of each sentence's word scores."""
    return [[labels[i] for i in path] for path in decode_all(decoder, emissions)]
