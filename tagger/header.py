"""The model header: the JSON in an exported file's metadata, its keys per model arch, and its check.

`tagger export` writes it (export/onnx.py, export/quantize.py); `load_artifact` checks it here.
TypedDicts, not dataclasses: the header is JSON that readers index and copy as a dict
(`{**header, "quantization": ...}`), and a TypedDict describes that dict without a conversion
layer, so files already shipped load exactly as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypedDict, Union, cast

from tagger.errors import ArtifactError

FORMAT_VERSION = 1  # what a file of one model is written as: every reader reads it
# A file of several heads (`heads`) is written as 2: a reader of version 1 would take it for its
# first head alone, so it is told to upgrade instead. This reader reads both.
HEADS_FORMAT_VERSION = 2
META_KEY = "tagger"  # metadata_props key holding the JSON header


class CrfScores(TypedDict):
    """Label transition scores the decoder adds to the graph's emissions."""

    transitions: list[list[float]]  # (num_labels, num_labels): from label i to label j
    start: list[float]  # (num_labels,)
    end: list[float]  # (num_labels,)


class Head(TypedDict, total=False):
    """One of several models a file holds over shared inputs (seeds of one recipe, say): the graph
    output of its emission scores and its CRF. The file's model is their mean label probability."""

    output: str
    crf: CrfScores  # absent: IOB2 constraints only


class Provenance(TypedDict, total=False):
    """Where the model came from. Export writes every key; readers use .get (nothing here is needed to tag)."""

    config: dict[str, Any]  # the TrainConfig, as plain data
    data: dict[str, Any]  # corpus, source, license, sentences per split
    license: str  # of the training data
    metrics: dict[str, Any]  # validation (and test) scores at training time
    trained_at: str
    train_git_sha: str
    export_git_sha: str
    exported_at: str
    heads: list[dict[str, Any]]  # a file of several heads: each head's own provenance, in head order
    calibration: dict[str, Any]  # a change of the scores after training: what, and what it was chosen on
    torch_version: str
    tagger_version: str
    opset: int


class Quantization(TypedDict, total=False):
    """What INT8 quantisation did and cost, measured when it was done."""

    mode: str  # a --quantize choice
    method: str
    test_f1_fp32: float
    test_f1_int8: float  # the test F1 of the graph in this file
    test_sentences: int
    fp32_bytes: int
    measured_on: dict[str, Any]  # the machine
    rewritten_from: dict[str, Any]  # the method and score before a rewrite into the portable form


class _Common(TypedDict):
    """Keys every header has, whatever its arch."""

    format_version: int
    language: str
    labels: list[str]  # IOB2 labels in output order
    output: str  # the graph output holding the emission scores
    provenance: Provenance


class _CommonOptional(TypedDict, total=False):
    """Keys a header may have, whatever its arch."""

    inputs: list[str]  # graph input names
    max_length: int | None  # pieces per encoder window (None: no limit)
    crf: CrfScores  # absent: IOB2 constraints only
    encoder: str  # the pretrained encoder (a BERT's, or a BiLSTM's context encoder)
    quantization: Quantization  # absent: float32 weights
    heads: list[Head]  # two or more: the file averages them (the first is `output` and `crf`); absent: one


class _LstmOptional(TypedDict, total=False):
    """Keys only a BiLSTM header may have."""

    casing: dict[str, Any]  # how words and case ids are formed
    context_layers: list[int]  # encoder layers read (a BiLSTM with a context encoder)
    window: int  # encoder window in pieces (a BiLSTM with a context encoder)


class _BertOptional(TypedDict, total=False):
    """Keys only a BERT header may have."""

    casing: str
    decoding: str  # how word tags are read off the piece scores


class LstmHeader(_Common, _CommonOptional, _LstmOptional):
    """The header of a BiLSTM(-CRF) model."""

    arch: Literal["lstm"]
    vocab: dict[str, Any]  # tagger.vocab.LstmVocab.to_json() (with a context tokenizer compressed)


class BertHeader(_Common, _CommonOptional, _BertOptional):
    """The header of a BERT tagger."""

    arch: Literal["bert"]
    subwords: dict[str, Any]  # tagger.subwords.SubwordEncoder.compressed() data


Header = Union[LstmHeader, BertHeader]
SCHEMAS: dict[str, type[Any]] = {"lstm": LstmHeader, "bert": BertHeader}
ARCHS = tuple(SCHEMAS)  # the model architectures, as `tagger train --arch` names them


def required_keys(schema: type[Any]) -> tuple[str, ...]:
    """The keys a TypedDict schema (a header's, or a checkpoint's) requires, in its declared order."""
    return tuple(key for key in schema.__annotations__ if key in schema.__required_keys__)


REQUIRED = (*required_keys(_Common), "arch")  # every arch: checked before the arch's own keys
LEGACY_ARCH_KEY = "kind"  # what files exported before 2026-11-30 (the shipped ones among them) call "arch"


def check_header(header: object, path: Path) -> Header:
    """The header, if this version can use it; else ArtifactError naming the file and what is wrong."""
    if not isinstance(header, dict):
        raise ArtifactError(f"{path}: tagger metadata is not a JSON object; re-export the model")
    if "arch" not in header and LEGACY_ARCH_KEY in header:
        header = {("arch" if k == LEGACY_ARCH_KEY else k): v for k, v in header.items()}
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise ArtifactError(f"{path}: tagger header lacks {', '.join(missing)}; re-export the model")
    version = header["format_version"]
    if not isinstance(version, int) or version > HEADS_FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: model format {version!r} is newer than this tagger reads ({HEADS_FORMAT_VERSION});"
            " upgrade with `pip install -U tagger`"
        )
    arch = header["arch"]
    if arch not in SCHEMAS:
        raise ArtifactError(f"{path}: unknown model arch {arch!r}; known: {', '.join(ARCHS)}")
    missing = [k for k in required_keys(SCHEMAS[arch]) if k not in header]
    if missing:
        raise ArtifactError(
            f"{path}: tagger header lacks {', '.join(missing)} (needed by arch {arch!r}); re-export the model"
        )
    heads = header.get("heads")
    if heads is not None and not (isinstance(heads, list) and len(heads) >= 2 and all(
            isinstance(h, dict) and isinstance(h.get("output"), str) for h in heads)):
        raise ArtifactError(f"{path}: tagger header's heads are not a list of two or more {{'output': ...}};"
                            " re-export the model")
    return cast(Header, header)


def heads_of(header: Header) -> list[Head]:
    """The models a file holds, each its output and CRF: the header's heads, or the one it describes."""
    if "heads" in header:
        return list(header["heads"])
    head: Head = {"output": header["output"]}
    if "crf" in header:
        head["crf"] = header["crf"]
    return [head]


def license_clauses(license_: str) -> list[str]:
    """The clauses of a data license as headers and checkpoints write it: 'A (x) AND B (y)' -> ['A (x)', 'B (y)']."""
    return [c for c in license_.split(" AND ") if c]


def joined_licenses(licenses: Iterable[str]) -> str:
    """Several licenses as one: each distinct clause once, in order, ' AND '-joined (a model trained on
    several corpora, or an average of models, inherits every one's data license)."""
    return " AND ".join(dict.fromkeys(c for text in licenses for c in license_clauses(text)))
