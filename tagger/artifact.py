"""The exported model file: an ONNX graph plus a JSON header in its metadata, checked on load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort

from tagger.errors import ArtifactError
from tagger.runtime import create_session

FORMAT_VERSION = 1
META_KEY = "tagger"  # metadata_props key holding the JSON header
KINDS = ("lstm", "bert")
REQUIRED = ("format_version", "kind", "language", "labels", "output", "provenance")


@dataclass(frozen=True)
class Artifact:
    """A loaded model: its inference session and its header."""

    path: Path
    header: dict[str, Any]
    session: ort.InferenceSession

    @property
    def labels(self) -> list[str]:
        """IOB2 labels in output order."""
        return list(self.header["labels"])

    @property
    def kind(self) -> str:
        """Model family: 'lstm' or 'bert'."""
        return str(self.header["kind"])

    @property
    def language(self) -> str:
        """Language code of the training data."""
        return str(self.header["language"])


def check_header(header: dict[str, Any], path: Path) -> None:
    """Raise ArtifactError unless `header` is a header this version can use."""
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise ArtifactError(f"{path}: tagger header lacks {', '.join(missing)}; re-export the model")
    version = header["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: model format {version!r} is newer than this tagger reads ({FORMAT_VERSION});"
            " upgrade with `pip install -U tagger`"
        )
    if header["kind"] not in KINDS:
        raise ArtifactError(f"{path}: unknown model kind {header['kind']!r}; known: {', '.join(KINDS)}")


def load_artifact(path: str | Path, device: str = "auto", threads: int | None = None) -> Artifact:
    """Open a tagger ONNX file and check its header against its graph."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise ArtifactError(f"{path}: {what}; pass a .onnx file made by `tagger export`")
    session = create_session(path, device, threads)
    raw = session.get_modelmeta().custom_metadata_map.get(META_KEY)
    if raw is None:
        raise ArtifactError(
            f"{path}: an ONNX model but not a tagger model (no '{META_KEY}' metadata);"
            " make one with `tagger export CHECKPOINT.pth`"
        )
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: tagger metadata is not valid JSON ({err}); re-export it") from None
    check_header(header, path)
    outputs = {o.name: o for o in session.get_outputs()}
    output = outputs.get(header["output"])
    if output is None:
        raise ArtifactError(f"{path}: the graph has no output {header['output']!r}; re-export it")
    width = output.shape[-1]
    if isinstance(width, int) and width != len(header["labels"]):
        raise ArtifactError(
            f"{path}: the graph scores {width} labels but the header lists"
            f" {len(header['labels'])}; the file is inconsistent, re-export it"
        )
    return Artifact(path, header, session)
