"""Checkpoints as plain data (primitives and tensors), loadable with `weights_only=True`."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from tagger.atomic import atomic_path
from tagger.errors import ArtifactError, TaggerError

FORMAT_VERSION = 1
REQUIRED = ("format_version", "arch", "config", "labels", "vocab", "state_dict")


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same folder, then a rename."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a Python file: OSError says why
            torch.save(checkpoint, handle)
    except (OSError, RuntimeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0][:120]
        raise TaggerError(
            f"{path}: cannot write the checkpoint ({reason}); free some space or pass --out DIR"
        ) from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without unpickling code; check its format."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such checkpoint; train one with `tagger train`")
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
    if not isinstance(checkpoint, dict) or any(k not in checkpoint for k in REQUIRED):
        raise ArtifactError(f"{path}: not a tagger checkpoint (needs keys {', '.join(REQUIRED)})")
    if checkpoint["format_version"] > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: checkpoint format {checkpoint['format_version']} is newer than this"
            f" tagger reads ({FORMAT_VERSION}); upgrade tagger"
        )
    return checkpoint
