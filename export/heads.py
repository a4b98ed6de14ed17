"""Several exported files of one recipe (its seeds, say) as one file of several heads.

The graphs run side by side over the inputs they share, and a weight they hold alike (a BiLSTM's
frozen e5 piece table: 6.7 of uk_lstm's 12.1 MB) is stored once, so a second seed costs its own
weights only. The file's model is the mean of its heads' label probabilities, each head's under its
own CRF (`tagger.predict.Tagger`), which is what `--model A --model B` averages at equal weights,
from one run of one graph. The heads must read the same inputs alike: same arch, labels, vocabulary
and tokenizer; anything else is refused with the key that differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx

from tagger.artifact import load_artifact
from tagger.atomic import atomic_path, writable_folder
from tagger.errors import TaggerError
from tagger.evaluation import evaluate
from tagger.export.header import get_header, stamp
from tagger.export.quantize import test_gold
from tagger.header import HEADS_FORMAT_VERSION, Header, Quantization
from tagger.predict import Tagger
from tagger.runtime import machine
from tagger.train.provenance import git_sha

# What every head must hold alike: what turns text into the graph's inputs and reads its outputs.
SHARED_KEYS = ("arch", "language", "labels", "inputs", "vocab", "subwords", "casing", "max_length",
               "encoder", "context_layers", "window", "decoding")
PARITY_ATOL = 1e-5  # the same kernels on the same inputs: any larger difference is a wiring bug


@dataclass(frozen=True)
class HeadsReport:
    """What merging wrote and proved."""

    path: Path
    size_bytes: int
    heads: int
    shared_bytes: int  # weights stored once instead of once a head
    shared_nodes: int  # nodes computed once for several heads (what they compute alike from the same inputs)
    max_diff: float  # each head's scores against its source file's, over the test split
    test_f1: float | None  # the merged file's, on the test split


def loaded(path: Path) -> onnx.ModelProto:
    """An ONNX file's model, or a TaggerError naming the file."""
    try:
        return onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - protobuf's decode errors have no common public type
        raise TaggerError(f"{path}: not an ONNX file ({type(err).__name__}); pass files made by `tagger export`") from None


def check_alike(headers: Sequence[Header], graphs: Sequence[onnx.ModelProto], paths: Sequence[Path]) -> None:
    """Refuse files that cannot share inputs, naming the first key that differs."""
    for path, header, graph in zip(paths[1:], headers[1:], graphs[1:]):
        for key in SHARED_KEYS:
            if header.get(key) != headers[0].get(key):
                raise TaggerError(f"{path}: its {key} differs from {paths[0]}'s; only models of one recipe and"
                                  " data (the same labels and vocabulary) can share a file")
        if [i.SerializeToString() for i in graph.graph.input] != [i.SerializeToString() for i in graphs[0].graph.input]:
            raise TaggerError(f"{path}: its graph inputs differ from {paths[0]}'s; re-export both with this tagger")
        if {(o.domain, o.version) for o in graph.opset_import} != {(o.domain, o.version) for o in graphs[0].opset_import}:
            raise TaggerError(f"{path}: its opsets differ from {paths[0]}'s; re-export both with this tagger")
        if header.get("quantization", {}).get("method") != headers[0].get("quantization", {}).get("method"):
            raise TaggerError(f"{path}: quantised otherwise than {paths[0]}; export them alike")
    for path, header, graph in zip(paths, headers, graphs):
        if "heads" in header or len(graph.graph.output) != 1:
            raise TaggerError(f"{path}: already holds several heads; merge the files of one model each")


def tensor_key(tensor: onnx.TensorProto) -> str:
    """The content of an initializer, whatever its name: equal keys hold equal weights."""
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)
    copy.name = copy.doc_string = ""
    if copy.data_location == onnx.TensorProto.DEFAULT:  # stated or not, the same place (exporters differ)
        copy.ClearField("data_location")
    return hashlib.sha256(copy.SerializeToString()).hexdigest()


def node_key(node: onnx.NodeProto, inputs: Sequence[str]) -> bytes:
    """What a node computes from inputs of these names: nodes with equal keys give equal outputs."""
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    copy.name = copy.doc_string = ""
    copy.input[:] = inputs
    del copy.output[:]
    return copy.SerializeToString()


def merged_graph(graphs: Sequence[onnx.ModelProto], outputs: Sequence[str]) -> tuple[onnx.ModelProto, int, int]:
    """The first graph with the others' nodes beside it, reading the same graph inputs; head k's names
    take the prefix `hK/`, its output is `outputs[k]`. An initializer equal to one already there is
    read from it, and a node computing what one already there computes from the same inputs is left
    out (its readers read that one's outputs): a frozen encoder the heads share runs once.
    Returns the model, the bytes stored once instead of twice and the nodes left out."""
    model = onnx.ModelProto()
    model.CopyFrom(graphs[0])
    graph = model.graph
    inputs = {i.name for i in graph.input}
    # The first graph's values under one name each: an exporter repeats constants under several names
    # (310 Constant nodes of 26 values in en_lstm), so a node of the first graph is known by what
    # it reads, whichever of equal values' names it reads them by.
    canonical: dict[str, str] = {}
    stored: dict[str, str] = {}
    for tensor in graph.initializer:
        canonical[tensor.name] = stored.setdefault(tensor_key(tensor), tensor.name)
    computed: dict[bytes, list[str]] = {}
    for node in graph.node:
        if random(node):
            continue
        key = node_key(node, [canonical.get(n, n) for n in node.input])
        canonical.update(zip(node.output, computed.setdefault(key, list(node.output))))
    shared_bytes = shared_nodes = 0
    for k, other in enumerate(graphs[1:], start=1):
        names: dict[str, str] = {name: name for name in inputs}
        names[""] = ""  # an omitted optional input stays omitted
        for tensor in other.graph.initializer:
            content = tensor_key(tensor)
            if content in stored:
                names[tensor.name] = stored[content]
                shared_bytes += len(tensor.SerializeToString())
                continue
            names[tensor.name] = stored[content] = f"h{k}/{tensor.name}"
            copy = graph.initializer.add()
            copy.CopyFrom(tensor)
            copy.name = names[tensor.name]

        def renamed(name: str, k: int = k, names: dict[str, str] = names) -> str:
            return names.setdefault(name, f"h{k}/{name}")

        for node in other.graph.node:  # in topological order (ONNX requires it): inputs are named first
            if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
                raise TaggerError(f"node {node.name} ({node.op_type}) holds a subgraph; merging such graphs is not supported")
            node_inputs = [renamed(n) for n in node.input]
            key = node_key(node, node_inputs)
            if key in computed and not random(node):
                names.update(zip(node.output, computed[key]))
                shared_nodes += 1
                continue
            copy = graph.node.add()
            copy.CopyFrom(node)
            copy.name = f"h{k}/{node.name}" if node.name else ""  # unnamed stays unnamed: names must be unique
            copy.input[:] = node_inputs
            copy.output[:] = [renamed(n) for n in node.output]
            computed.setdefault(key, list(copy.output))
        for info in other.graph.value_info:
            if renamed(info.name).startswith(f"h{k}/"):  # a shared value keeps the first graph's info
                copy = graph.value_info.add()
                copy.CopyFrom(info)
                copy.name = renamed(info.name)
        # The head's scores under their own name, even where every node of it was shared (twins).
        graph.node.add().CopyFrom(onnx.helper.make_node("Identity", [renamed(other.graph.output[0].name)], [outputs[k]],
                                                        name=f"h{k}/output"))
        out = graph.output.add()
        out.CopyFrom(other.graph.output[0])
        out.name = outputs[k]
    return model, shared_bytes, shared_nodes


def random(node: onnx.NodeProto) -> bool:
    """A node whose outputs are not a function of its inputs: never shared."""
    return node.op_type.startswith("Random") or node.op_type in ("Multinomial", "Bernoulli", "Dropout")


def merged_header(headers: Sequence[Header], outputs: Sequence[str], test_f1: float | None,
                  test_sentences: int) -> Header:
    """The first file's header, with every head's output, CRF and provenance; its quantisation
    method is theirs (checked alike), its test F1 the merged file's."""
    first = headers[0]
    heads = [{"output": out, **({"crf": h["crf"]} if "crf" in h else {})} for out, h in zip(outputs, headers)]
    provenance = {**first["provenance"], "heads": [h["provenance"] for h in headers], "export_git_sha": git_sha(),
                  "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    header = cast(dict[str, Any], {**first, "format_version": HEADS_FORMAT_VERSION, "heads": heads,
                                   "provenance": provenance})
    if "quantization" in first:
        quantization: Quantization = {k: v for k, v in first["quantization"].items()  # type: ignore[assignment]
                                      if k in ("mode", "method")}
        if test_f1 is not None:
            quantization.update({"test_f1_int8": round(test_f1, 4), "test_sentences": test_sentences,
                                 "measured_on": machine()})
        header["quantization"] = quantization
    return cast(Header, header)


def merge_heads(paths: Sequence[Path], out: Path, data: str | None = None, scored: bool = True) -> HeadsReport:
    """Write the files at `paths` as one file of several heads at `out` (atomically), after proving
    that each head scores the test split of the first file's corpus (`test_gold`: from `data`, else
    the folder it was trained from, else $TAGGER_DATA or the Hub) as its source file does; `scored`
    records the merged file's test F1 in its header (False: no test split is read, and one word
    proves the heads)."""
    if len(paths) < 2:
        raise TaggerError("give two or more model files to merge into one")
    writable_folder(out)
    graphs = [loaded(p) for p in paths]
    headers = [get_header(g, p) for g, p in zip(graphs, paths)]
    check_alike(headers, graphs, paths)
    first = headers[0]["output"]
    outputs = [first, *(f"{first}_{k}" for k in range(1, len(paths)))]
    model, shared, shared_nodes = merged_graph(graphs, outputs)
    test = test_gold(headers[0]["provenance"].get("data", {}), headers[0]["language"], data) if scored else []
    with atomic_path(out) as tmp:
        stamp(model, merged_header(headers, outputs, None, 0))
        onnx.save(model, str(tmp))
        merged = Tagger(load_artifact(tmp, device="cpu"))
        sentences = [list(s.words) for s in test] or [["tagger"]]
        both = merged.heads(merged.emit(sentences))
        max_diff = 0.0
        for k, path in enumerate(paths):
            alone = Tagger(load_artifact(path, device="cpu")).emit(sentences)
            diffs = [float(np.max(np.abs(a - b))) for a, b in zip(alone, both[k]) if len(a)]
            max_diff = max([max_diff, *diffs])
        if not max_diff <= PARITY_ATOL:
            raise TaggerError(f"merged heads differ from their files by {max_diff:.1e} (atol {PARITY_ATOL:.0e});"
                              " nothing written. This is a bug in merging, please report it")
        test_f1 = evaluate(merged, test).micro.f1 if test else None
        if test_f1 is not None:  # the graph is still in memory: restamp it, no need to read the file back
            stamp(model, merged_header(headers, outputs, test_f1, len(test)))
            onnx.save(model, str(tmp))
    return HeadsReport(out, out.stat().st_size, len(paths), shared, shared_nodes, max_diff, test_f1)
