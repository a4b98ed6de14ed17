"""The exported model file: an ONNX graph plus a JSON header in its metadata, checked on load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from tagger.errors import ArtifactError
from tagger.header import META_KEY, Header, check_header, heads_of
from tagger.runtime import create_session


@dataclass(frozen=True)
class Artifact:
    """A loaded model: its inference session and its header."""

    path: Path
    header: Header
    session: ort.InferenceSession

    @property
    def labels(self) -> list[str]:
        """IOB2 labels in output order."""
        return list(self.header["labels"])

    @property
    def arch(self) -> str:
        """Model architecture: 'lstm' or 'bert'."""
        return str(self.header["arch"])

    @property
    def language(self) -> str:
        """Language code of the training data."""
        return str(self.header["language"])


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
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: tagger metadata is not valid JSON ({err}); re-export it") from None
    header = check_header(data, path)
    outputs = {o.name: o for o in session.get_outputs()}
    for head in heads_of(header):
        output = outputs.get(head["output"])
        if output is None:
            raise ArtifactError(f"{path}: the graph has no output {head['output']!r}; re-export it")
        width = output.shape[-1]
        if isinstance(width, int) and width != len(header["labels"]):
            raise ArtifactError(
                f"{path}: the graph scores {width} labels but the header lists"
                f" {len(header['labels'])}; the file is inconsistent, re-export it"
            )
    return Artifact(path, header, session)
