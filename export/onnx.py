"""Checkpoint to one self-contained ONNX file, written only after torch/ORT parity is proven."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

import tagger
from tagger.artifact import load_artifact
from tagger.atomic import atomic_path, writable_folder
from tagger.decode import Decoder
from tagger.errors import TaggerError
from tagger.export.fusion import FusionError, fuse, lean_copy
from tagger.export.header import set_header
from tagger.export.quantize import quantize_int8
from tagger.header import FORMAT_VERSION, Header, Provenance, Quantization
from tagger.features import CASES, LstmEncoder
from tagger.predict import EmitFn, Tagger, tag_with
from tagger.subwords import SubwordEncoder
from tagger.train.checkpoint import BertCheckpoint, Checkpoint, LstmCheckpoint, load_checkpoint
from tagger.train.models import build_model
from tagger.train.provenance import git_sha
from tagger.train.scorers import bert_torch_emitter, crf_decoder, crf_scores, lstm_torch_emitter, torch_run

OPSET = 17
ATOL = 1e-4  # BiLSTM: largest allowed |torch - ORT| emission difference at real words
ATOL_BERT = 1e-3  # BERT (and a BiLSTM over a frozen encoder): layers of float32 sums in another order drift further
OUTPUT = "emissions"
LSTM_AXES = {
    "word_ids": {0: "batch", 1: "seq_len"},
    "case_ids": {0: "batch", 1: "seq_len"},
    "char_ids": {0: "batch", 1: "seq_len", 2: "word_len"},
    "piece_ids": {0: "batch", 1: "seq_len", 2: "pieces"},
    "input_ids": {0: "windows", 1: "window_pieces"},
    "attention_mask": {0: "windows", 1: "window_pieces"},
    "word_index": {0: "batch", 1: "seq_len"},
    OUTPUT: {0: "batch", 1: "seq_len"},
}
BERT_AXES = {"input_ids": {0: "batch", 1: "pieces"}, "attention_mask": {0: "batch", 1: "pieces"},
             OUTPUT: {0: "batch", 1: "pieces"}}


class ExportMismatchError(TaggerError):
    """ONNX Runtime's results differ from torch's beyond the tolerance; nothing was written."""


@dataclass(frozen=True)
class ExportReport:
    """What the parity check measured (and, with --quantize, what INT8 cost)."""

    path: Path
    max_diff: float
    atol: float
    batches: int
    sentences: int
    size_bytes: int
    quantized: Quantization | None = None
    fused: dict[str, int] | None = None  # BERT: how many nodes of each op ONNX Runtime's fusion wrote


@dataclass(frozen=True)
class Exportable:
    """One architecture as the exporter sees it: a graph, how to feed it, how to check it."""

    model: torch.nn.Module
    input_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]
    encode: Callable[[list[list[str]]], dict[str, np.ndarray]]  # sentences -> graph inputs
    valid: Callable[[dict[str, np.ndarray]], np.ndarray]  # graph inputs -> (batch, positions) bool: outputs that count
    emit: EmitFn  # word scores of sentences by torch, for comparing tags
    decoder: Decoder
    header: dict[str, Any]  # arch-specific header fields
    atol: float
    traced: torch.nn.Module | None = None  # what is traced into the graph, when not `model` (the torch reference)
    fuse: Callable[[Path], dict[str, int]] | None = None  # rewrites the traced graph in place; returns op counts


def lstm_exportable(checkpoint: LstmCheckpoint) -> Exportable:
    """The BiLSTM-CRF: emissions per word; the CRF transitions travel in the header."""
    model, vocab = build_model(checkpoint)
    encoder = LstmEncoder(vocab)  # one for the parity check's inputs and the torch scores
    stored = dict(checkpoint["vocab"])
    context = {}
    if vocab.context:
        stored["context"] = SubwordEncoder.compressed(vocab.context)
        context = {"encoder": checkpoint.get("encoder", ""), "context_layers": model.context.layers,
                   "window": vocab.context["max_pieces"]}
    return Exportable(
        model=model, input_names=vocab.input_names,
        dynamic_axes={name: LSTM_AXES[name] for name in [*vocab.input_names, OUTPUT]},
        encode=encoder.encode, valid=lambda inputs: inputs["word_ids"] != 0,
        emit=lstm_torch_emitter(model, encoder), decoder=crf_decoder(model, list(checkpoint["labels"])),
        header={"vocab": stored, "casing": {"words": "lowercased, digits folded to 0", "case_ids": CASES},
                "crf": crf_scores(model),
                "max_length": None, **context},
        atol=ATOL_BERT if vocab.context else ATOL,
    )


def bert_exportable(checkpoint: BertCheckpoint) -> Exportable:
    """The BERT tagger: scores per piece; the tokenizer and window size travel in the header.

    The graph is traced from a copy in the form ONNX Runtime fuses (export/fusion.py) and then
    fused; the parity check compares it with the model as trained (SDPA attention).
    """
    model, subwords = build_model(checkpoint)
    config = model.encoder.config
    crf = {} if model.crf is None else {"crf": crf_scores(model)}

    def encode(sentences: list[list[str]]) -> dict[str, np.ndarray]:
        windows, pieces = subwords.windows(sentences)
        input_ids, attention_mask, _ = subwords.batch_inputs(windows, pieces)
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    return Exportable(
        model=model, input_names=["input_ids", "attention_mask"], dynamic_axes=BERT_AXES,
        encode=encode, valid=lambda inputs: inputs["attention_mask"] == 1,
        emit=bert_torch_emitter(model, subwords, len(checkpoint["labels"])),
        decoder=crf_decoder(model, list(checkpoint["labels"])),
        header={"subwords": SubwordEncoder.compressed(checkpoint["vocab"]), "encoder": checkpoint.get("encoder", ""),
                "casing": "cased: words go to the encoder's tokenizer as written",
                "max_length": subwords.max_pieces,
                "decoding": "first piece of each word; IOB2-constrained Viterbi" + (" with CRF transitions" if crf else ""),
                **crf},
        atol=ATOL_BERT,
        traced=lean_copy(model),
        fuse=partial(fuse, num_heads=config.num_attention_heads, hidden_size=config.hidden_size,
                     layers=config.num_hidden_layers),
    )


def exportable_of(checkpoint: Checkpoint) -> Exportable:
    """The checkpoint's model as the exporter sees it."""
    if checkpoint["arch"] == "lstm":
        return lstm_exportable(checkpoint)
    return bert_exportable(checkpoint)


def header_of(checkpoint: Checkpoint, exportable: Exportable) -> Header:
    """The JSON header stored in the ONNX file's metadata (its schema: tagger/header.py)."""
    header = {
        "format_version": FORMAT_VERSION,
        "arch": checkpoint["arch"],
        "language": checkpoint["config"]["lang"],
        "labels": list(checkpoint["labels"]),
        "inputs": exportable.input_names,
        "output": OUTPUT,
        **exportable.header,
        "provenance": provenance_of(checkpoint),
    }
    # The arch's own keys come from its Exportable; check_parity loads the file through
    # tagger.header.check_header before it is kept, so a header the reader would refuse is never written.
    return cast(Header, header)


def provenance_of(checkpoint: Checkpoint) -> Provenance:
    """Where the model came from: its training run, its data and this export."""
    data = checkpoint.get("data", {})
    return {
        "config": checkpoint["config"],
        "data": data,
        "license": data.get("license", ""),
        "metrics": checkpoint.get("metrics", {}),
        "trained_at": checkpoint.get("created", ""),
        "train_git_sha": checkpoint.get("git_sha", ""),
        "export_git_sha": git_sha(),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__),
        "tagger_version": tagger.__version__,
        "opset": OPSET,
    }


def parity_batches(examples: list[list[str]], windowed: bool = False) -> list[list[list[str]]]:
    """Batches of several sizes and lengths: each sentence alone, all together, and mixed pairs.

    For a model that reads encoder windows one more sentence is longer than a window, so
    window merging is compared too.
    """
    examples = [e for e in examples if e] or [["Київ"], ["a", "b", "c"]]
    groups = [[e] for e in examples] + [examples, examples[::-1][:2]]
    if windowed:
        long = [w for _ in range(12) for e in examples for w in e][:1200]
        groups.append([long, examples[0]])
    return groups


def check_parity(exportable: Exportable, labels: list[str], onnx_path: Path, groups: list[list[list[str]]]) -> float:
    """Run torch and ORT on the same batches; raise ExportMismatchError on any difference.

    Returns:
        the largest output difference
    """
    artifact = load_artifact(onnx_path, device="cpu")
    runner = Tagger(artifact)
    max_diff = 0.0
    for batch in groups:
        inputs = exportable.encode(batch)
        expected = torch_run(exportable.model, inputs)
        (actual,) = artifact.session.run([OUTPUT], inputs)
        valid = exportable.valid(inputs)
        diff = float(np.abs(expected - actual)[valid].max()) if valid.any() else 0.0
        max_diff = max(max_diff, diff)
        if not diff <= exportable.atol:
            raise ExportMismatchError(
                f"export refused: output {OUTPUT!r} differs from torch by max diff {diff:.2e}"
                f" (atol {exportable.atol:.0e}) on a batch of {len(batch)} (longest {max(map(len, batch))} words)"
            )
        want = tag_with(exportable.emit, exportable.decoder, labels, batch)
        if want != runner.tag(batch):
            raise ExportMismatchError(
                f"export refused: tags from ONNX Runtime differ from torch's on a batch of {len(batch)}"
            )
    return max_diff


def write_graph(exportable: Exportable, header: Header, sample: list[list[str]], path: Path) -> dict[str, int] | None:
    """Trace the model into `path` with dynamic axes, fuse it where the arch does, and store the header.

    Returns:
        the fused op counts, or None for an arch that is not fused
    """
    traced = exportable.traced if exportable.traced is not None else exportable.model
    inputs = exportable.encode(sample)
    with warnings.catch_warnings():
        # torch 2.13 warns that the TorchScript exporter will go away; it is the one that
        # exports these graphs in seconds, and the parity check proves the result.
        for category in (DeprecationWarning, FutureWarning, UserWarning, torch.jit.TracerWarning):
            warnings.simplefilter("ignore", category=category)
        torch.onnx.export(  # by keyword: which optional inputs a BiLSTM has varies
            traced, (), str(path), kwargs={k: torch.from_numpy(inputs[k]) for k in exportable.input_names},
            input_names=exportable.input_names, output_names=[OUTPUT], opset_version=OPSET, dynamo=False,
            dynamic_axes=exportable.dynamic_axes,
        )
    exportable.model.eval()  # the exporter restores the previous mode; be explicit before comparing
    traced.eval()
    fused = exportable.fuse(path) if exportable.fuse is not None else None
    set_header(path, header)
    return fused


def export_checkpoint(checkpoint_path: str | Path, out: str | Path | None = None, quantize: str | None = None,
                      data: str | None = None) -> ExportReport:
    """Export a checkpoint to one ONNX file (graph + header); parity-checked, written atomically.

    With quantize="int8" the written file is the dynamically quantised graph, and the test F1
    of both graphs is measured and stored in its header.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    out = Path(out) if out else Path(checkpoint_path).with_suffix(".onnx")
    writable_folder(out)
    exportable = exportable_of(checkpoint)
    labels = list(checkpoint["labels"])
    examples = [list(e) for e in checkpoint.get("examples", [])]
    groups = parity_batches(examples, windowed="input_ids" in exportable.input_names)  # BERT, or a BiLSTM with --context
    header = header_of(checkpoint, exportable)
    quantized = None
    try:
        with atomic_path(out) as tmp:
            fused = write_graph(exportable, header, parity_batches(examples)[-2], tmp)  # all examples in one batch
            max_diff = check_parity(exportable, labels, tmp, groups)
            if quantize:
                quantized = quantize_int8(tmp, header, checkpoint, data, quantize)
    except FusionError as err:  # raised on the temporary file: name the one asked for
        raise FusionError(f"{out}: {err}") from None
    except OSError as err:  # a full disk or a folder that turned unwritable; the atomic write left nothing
        raise TaggerError(
            f"{out}: cannot write the ONNX file ({err.strerror}); free some space or pass -o FILE elsewhere"
        ) from None
    sentences = sum(len(b) for b in groups)
    return ExportReport(out, max_diff, exportable.atol, len(groups), sentences, out.stat().st_size, quantized, fused)
