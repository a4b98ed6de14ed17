"""The JSON header in an exported ONNX file's metadata: written by export and by quantisation alike."""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from tagger.atomic import atomic_path
from tagger.errors import ArtifactError
from tagger.header import META_KEY, Header, check_header


def get_header(graph: onnx.ModelProto, path: Path) -> Header:
    """The checked JSON header of a loaded ONNX file (merging, and scripts that rewrite a file's
    graph, read it so), or an ArtifactError naming the file."""
    props = {p.key: p.value for p in graph.metadata_props}
    if META_KEY not in props:
        raise ArtifactError(f"{path}: no tagger header; pass a file made by `tagger export`")
    try:
        return check_header(json.loads(props[META_KEY]), path)
    except json.JSONDecodeError as err:
        raise ArtifactError(f"{path}: its tagger header is not valid JSON ({err}); re-export it") from None


def stamp(graph: onnx.ModelProto, header: Header) -> None:
    """Store (or replace) the JSON header in a loaded graph's metadata, and check the graph."""
    graph.doc_string = (f"tagger {header['arch']} NER model ({header['language']});"
                        f" license of its data: {header['provenance']['license']}")
    kept = [(p.key, p.value) for p in graph.metadata_props if p.key != META_KEY]
    del graph.metadata_props[:]
    onnx.helper.set_model_props(graph, {**dict(kept), META_KEY: json.dumps(header, ensure_ascii=False)})
    onnx.checker.check_model(graph)


def set_header(path: Path, header: Header) -> None:
    """Store (or replace) the JSON header in an ONNX file's metadata, and check the file."""
    graph = onnx.load(str(path))
    stamp(graph, header)
    onnx.save(graph, str(path))


def write_stamped(graph: onnx.ModelProto, header: Header, out: Path) -> None:
    """Store `header` in a loaded graph (checked) and write it to `out` atomically, its folder made:
    scripts that rewrite a file's graph or header write so, and a failure leaves `out` as it was."""
    stamp(graph, header)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        onnx.save(graph, str(tmp))
