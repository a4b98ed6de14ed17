"""Checkpoints as plain data (primitives and tensors), loadable with `weights_only=True`: the schema,
its keys per model arch, the writer and the checking reader.

TypedDicts, not dataclasses: a checkpoint is the dict `torch.save` writes and
`torch.load(weights_only=True)` gives back, so a TypedDict describes it with no conversion layer
and the files written so far load unchanged.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Literal, TypedDict, Union, cast

import torch

from tagger.atomic import atomic_path
from tagger.errors import ArtifactError, TaggerError
from tagger.header import required_keys

CHECKPOINT_VERSION = 1


class _CheckpointCommon(TypedDict):
    """Keys every checkpoint has, whatever its arch."""

    format_version: int
    config: dict[str, Any]  # TrainConfig.to_dict()
    labels: list[str]  # IOB2 labels in output order
    vocab: dict[str, Any]  # LstmVocab.to_json() or SubwordEncoder.to_json()
    state_dict: dict[str, torch.Tensor]  # the un-compiled module's weights, on the CPU


class _Recorded(TypedDict, total=False):
    """What training records beside the weights; export copies it into the header's provenance."""

    encoder: str  # the pretrained encoder's name (a BERT's, or a BiLSTM's context encoder)
    examples: list[list[str]]  # validation sentences export checks parity on
    data: dict[str, Any]  # corpus, source, license, sentences per split
    metrics: dict[str, Any]
    created: str
    git_sha: str
    torch_version: str


class _LstmCheckpointOptional(TypedDict, total=False):
    """Keys only some BiLSTM checkpoints have."""

    encoder_config: str  # required when config["context"] is not "none" (see CONTEXT_REQUIRED)


class LstmCheckpoint(_CheckpointCommon, _Recorded, _LstmCheckpointOptional):
    """A BiLSTM(-CRF) checkpoint."""

    arch: Literal["lstm"]


class BertCheckpoint(_CheckpointCommon, _Recorded):
    """A BERT tagger checkpoint."""

    arch: Literal["bert"]
    encoder_config: str  # the encoder's config JSON: its shape, rebuilt offline


Checkpoint = Union[LstmCheckpoint, BertCheckpoint]
CHECKPOINT_SCHEMAS: dict[str, type[Any]] = {"lstm": LstmCheckpoint, "bert": BertCheckpoint}
CONTEXT_REQUIRED = ("encoder_config",)  # a BiLSTM that reads a frozen encoder rebuilds it from these


CHECKPOINT_REQUIRED = (*required_keys(_CheckpointCommon), "arch")  # every arch: checked before the arch's own keys


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write atomically: a temporary file in the same folder, then a rename. A checkpoint the reader
    would refuse (a key its arch needs is missing) is never written."""
    check_checkpoint(checkpoint, Path(path))
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a Python file: OSError says why
            torch.save(checkpoint, handle)
    except (OSError, RuntimeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0][:120]
        raise TaggerError(
            f"{path}: cannot write the checkpoint ({reason}); free some space or pass --out DIR"
        ) from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint without unpickling code; check its format and its keys."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such checkpoint; train one with `tagger train`")
    if path.suffix == ".onnx":  # torch.load would only say "Unsupported operand"
        raise ArtifactError(f"{path}: already an exported model; export takes a checkpoint of `tagger train`"
                            " (best_*.pth), as --init does, or several files (.pth or .onnx seeds) to merge with -o FILE")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message opens with advice to load with weights_only=False: never show that.
        lines = [line.strip() for line in str(err).splitlines()]
        detail = next((line for line in lines if "GLOBAL" in line or line.startswith("Unsupported")),
                      "not plain data")
        raise ArtifactError(
            f"{path}: refused: the file holds more than plain data and tensors ({detail[:160]});"
            " only checkpoints written by `tagger train` load"
        ) from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for files that are not checkpoints
        raise ArtifactError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})"[:300]) from None
    return check_checkpoint(checkpoint, path)


def check_checkpoint(checkpoint: object, path: Path) -> Checkpoint:
    """The checkpoint, if this version can rebuild its model; else ArtifactError naming the file and the missing key."""
    if not isinstance(checkpoint, dict):
        raise ArtifactError(f"{path}: not a tagger checkpoint (a {type(checkpoint).__name__}, not a dict of"
                            f" {', '.join(CHECKPOINT_REQUIRED)})")
    missing = [k for k in CHECKPOINT_REQUIRED if k not in checkpoint]
    if missing:
        raise ArtifactError(f"{path}: not a tagger checkpoint (it lacks {', '.join(missing)})")
    if checkpoint["format_version"] > CHECKPOINT_VERSION:
        raise ArtifactError(
            f"{path}: checkpoint format {checkpoint['format_version']} is newer than this"
            f" tagger reads ({CHECKPOINT_VERSION}); upgrade tagger"
        )
    arch = checkpoint["arch"]
    if arch not in CHECKPOINT_SCHEMAS:
        raise ArtifactError(f"{path}: unknown model arch {arch!r}; known: {', '.join(CHECKPOINT_SCHEMAS)}")
    needed, by = required_keys(CHECKPOINT_SCHEMAS[arch]), f"arch {arch!r}"
    config = checkpoint["config"]
    if arch == "lstm" and isinstance(config, dict) and config.get("context", "none") != "none":
        needed, by = needed + CONTEXT_REQUIRED, f"arch {arch!r} with a context encoder"
    missing = [k for k in needed if k not in checkpoint]
    if missing:
        raise ArtifactError(f"{path}: checkpoint lacks {', '.join(missing)} (needed by {by});"
                            " train it again with `tagger train`")
    return cast(Checkpoint, checkpoint)
