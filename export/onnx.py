"""Checkpoint to one self-contained ONNX file, written only after torch/ORT parity is proven."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

import tagger
from tagger.atomic import atomic_path
from tagger.artifact import FORMAT_VERSION, META_KEY, load_artifact
from tagger.decode import Decoder
from tagger.errors import TaggerError
from tagger.features import CASES, LstmVocab
from tagger.predict import Tagger
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.loop import git_sha
from train.lstm import BiLSTMTagger

OPSET = 17
ATOL = 1e-4  # largest allowed |torch - ORT| emission difference at real words
OUTPUT = "emissions"
DYNAMIC_AXES = {
    "word_ids": {0: "batch", 1: "seq_len"},
    "case_ids": {0: "batch", 1: "seq_len"},
    "char_ids": {0: "batch", 1: "seq_len", 2: "word_len"},
    "piece_ids": {0: "batch", 1: "seq_len", 2: "pieces"},
    OUTPUT: {0: "batch", 1: "seq_len"},
}


class ExportMismatchError(TaggerError):
    """ONNX Runtime's results differ from torch's beyond the tolerance; nothing was written."""


@dataclass(frozen=True)
class ExportReport:
    """What the parity check measured."""

    path: Path
    max_diff: float
    batches: int
    sentences: int
    size_bytes: int


def build_model(checkpoint: dict[str, Any]) -> tuple[BiLSTMTagger, LstmVocab]:
    """The checkpoint's model in eval mode, on the CPU, and its vocabulary."""
    config = TrainConfig.from_dict(checkpoint["config"])
    vocab = LstmVocab.from_json(checkpoint["vocab"])
    table = checkpoint["state_dict"].get("piece_table")
    model = BiLSTMTagger(config, len(vocab.words), len(vocab.chars), len(checkpoint["labels"]),
                         None if table is None else tuple(table.shape))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), vocab


def header_of(checkpoint: dict[str, Any], model: BiLSTMTagger, inputs: list[str]) -> dict[str, Any]:
    """The JSON header stored in the ONNX file's metadata."""
    crf = model.crf
    data = checkpoint.get("data", {})
    return {
        "format_version": FORMAT_VERSION,
        "kind": checkpoint["arch"],
        "language": checkpoint["config"]["lang"],
        "labels": list(checkpoint["labels"]),
        "inputs": inputs,
        "output": OUTPUT,
        "vocab": checkpoint["vocab"],
        "casing": {"words": "lowercased, digits folded to 0", "case_ids": CASES},
        "crf": {k: getattr(crf, k).detach().tolist() for k in ("transitions", "start", "end")},
        "max_length": None,
        "provenance": {
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
        },
    }


def parity_batches(examples: list[list[str]]) -> list[list[list[str]]]:
    """Batches of several sizes and lengths: each sentence alone, all together, and mixed pairs."""
    examples = [e for e in examples if e] or [["Київ"], ["a", "b", "c"]]
    return [[e] for e in examples] + [examples, examples[::-1][:2]]


def check_parity(model: BiLSTMTagger, vocab: LstmVocab, labels: list[str], onnx_path: Path, examples: list[list[str]]) -> tuple[float, int]:
    """Run torch and ORT on the same batches; raise ExportMismatchError on any difference.

    Returns:
        (largest emission difference, number of batches compared)
    """
    artifact = load_artifact(onnx_path, device="cpu")
    runner = Tagger(artifact)
    crf = model.crf
    decoder = Decoder(labels, *(p.detach().numpy() for p in (crf.transitions, crf.start, crf.end)))
    max_diff = 0.0
    groups = parity_batches(examples)
    for batch in groups:
        inputs = vocab.encode(batch)
        with torch.no_grad():
            expected = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).numpy()
        (actual,) = artifact.session.run([OUTPUT], inputs)
        lengths = [len(s) for s in batch]
        for b, length in enumerate(lengths):
            diff = float(np.abs(expected[b, :length] - actual[b, :length]).max())
            max_diff = max(max_diff, diff)
            if not diff <= ATOL:
                raise ExportMismatchError(
                    f"export refused: output {OUTPUT!r} differs from torch by max diff {diff:.2e}"
                    f" (atol {ATOL:.0e}) on a batch of {len(batch)}, sentence of {length} words"
                )
        want = [[labels[i] for i in p] for p in decoder.decode(expected, lengths)]
        got = runner.tag(batch)
        if want != got:
            raise ExportMismatchError(
                f"export refused: tags from ONNX Runtime differ from torch's on a batch of {len(batch)}"
            )
    return max_diff, len(groups)


def export_checkpoint(checkpoint_path: str | Path, out: str | Path | None = None) -> ExportReport:
    """Export a BiLSTM checkpoint to one ONNX file (graph + header); atomic, parity-checked."""
    checkpoint = load_checkpoint(checkpoint_path)
    out = Path(out) if out else Path(checkpoint_path).with_suffix(".onnx")
    if not out.parent.is_dir():
        raise TaggerError(f"{out.parent}: no such folder for the ONNX file; create it or pass -o FILE")
    try:  # prove the folder writable before any work
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise TaggerError(
            f"{out.parent}: cannot write the ONNX file there ({err.strerror}); pass -o FILE in a writable folder"
        ) from None
    model, vocab = build_model(checkpoint)
    labels = list(checkpoint["labels"])
    examples = [list(e) for e in checkpoint.get("examples", [])]
    sample = {k: torch.from_numpy(v) for k, v in vocab.encode(parity_batches(examples)[-2]).items()}
    try:
        with atomic_path(out) as tmp:
            with warnings.catch_warnings():
                # torch 2.13 warns that the TorchScript exporter will go away; it is the one that
                # exports this graph in seconds, and parity below proves the result.
                warnings.simplefilter("ignore", category=DeprecationWarning)
                warnings.simplefilter("ignore", category=FutureWarning)
                warnings.simplefilter("ignore", category=UserWarning)
                warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
                torch.onnx.export(
                    model, tuple(sample[k] for k in vocab.input_names), str(tmp),
                    input_names=vocab.input_names, output_names=[OUTPUT], opset_version=OPSET, dynamo=False,
                    dynamic_axes={name: DYNAMIC_AXES[name] for name in [*vocab.input_names, OUTPUT]},
                )
            model.eval()  # the exporter restores the previous mode; be explicit before comparing
            graph = onnx.load(str(tmp))
            header = header_of(checkpoint, model, vocab.input_names)
            graph.doc_string = f"tagger {header['kind']} NER model ({header['language']}); license of its data: {header['provenance']['license']}"
            onnx.helper.set_model_props(graph, {META_KEY: json.dumps(header, ensure_ascii=False)})
            onnx.checker.check_model(graph)
            onnx.save(graph, str(tmp))
            max_diff, compared = check_parity(model, vocab, labels, tmp, examples)
    except OSError as err:  # a full disk or a folder that turned unwritable; the atomic write left nothing
        raise TaggerError(
            f"{out}: cannot write the ONNX file ({err.strerror}); free some space or pass -o FILE elsewhere"
        ) from None
    return ExportReport(out, max_diff, compared, sum(len(b) for b in parity_batches(examples)), out.stat().st_size)
