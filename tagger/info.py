"""What a model file is: language, labels, training data and its license, recorded scores, cost of INT8."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnxruntime as ort

from tagger.artifact import Artifact, load_artifact
from tagger.errors import ArtifactError
from tagger.header import Header, joined_licenses
from tagger.runtime import CPU, CUDA, has_cuda_driver
from tagger.scheme import entity_types


def resolve(model: str) -> tuple[list[Path], list[float] | None]:
    """The files (and, for a shipped average, its weights) of a model file, a shipped file's name
    (`uk_bert`), or a language (`uk`: its default choice)."""
    from tagger.shipped import shipped_models

    path = Path(model)
    if path.suffix == ".onnx" or path.exists():
        return [path], None
    lang, _, arch = model.partition("_")
    try:
        paths, weights = shipped_models(lang, arch or None)
        return paths, weights if len(paths) > 1 else None
    except ArtifactError:
        raise ArtifactError(f"{model}: no such file, and not a shipped model name (e.g. uk, uk_bert, en_lstm);"
                            " pass a .onnx file made by `tagger export`") from None


def resolve_models(models: Sequence[str | Path], weights: Sequence[float] | None) -> tuple[list[Path], list[float] | None]:
    """The files of `models` (each read as `resolve` reads it) and their weights: `weights` if given,
    else a lone shipped average's own (None: equal)."""
    resolved = [resolve(str(model)) for model in models]
    paths = [path for found, _ in resolved for path in found]
    if weights is None and len(models) == 1:  # one name for a shipped average brings its weights
        weights = resolved[0][1]
    return paths, None if weights is None else list(weights)


def micro_f1(metrics: dict[str, Any], split: str) -> float | None:
    """The micro F1 of `split` in a provenance metrics dict, if recorded."""
    value = metrics.get(split, {}).get("micro", {}).get("f1")
    return round(float(value), 4) if value is not None else None


def recorded_test_f1(header: Header) -> float | None:
    """The test F1 a header records for its file: the INT8 graph's where quantised, else training's."""
    quantization = header.get("quantization")
    if quantization is not None:
        return float(quantization["test_f1_int8"])
    return micro_f1(header.get("provenance", {}).get("metrics", {}), "test")


def pretrained_encoder(header: Header) -> str | None:
    """Which pretrained encoder a model builds on and how (its training config says), or None."""
    config = header.get("provenance", {}).get("config", {})
    if config.get("arch") == "bert":
        depth = config.get("encoder_layers")
        return f"{config.get('encoder')}, fine-tuned, " + (f"its first {depth} layer{'s' * (depth != 1)}" if depth else "all its layers")
    if config.get("context", "none") != "none":
        return f"{config['context']}, frozen, layers {config.get('context_layers')} read"
    if config.get("pieces", "none") != "none":
        return f"{config['pieces']}, frozen piece embeddings"
    return None


def describe(artifact: Artifact) -> dict[str, Any]:
    """The facts `tagger info` shows, as plain data (its --json)."""
    header = artifact.header
    provenance = header.get("provenance", {})
    data = provenance.get("data", {})
    metrics = provenance.get("metrics", {})
    quantization = header.get("quantization")
    providers = [CPU] + ([CUDA] if CUDA in ort.get_available_providers() and has_cuda_driver() else [])
    return {
        "file": str(artifact.path),
        "size_bytes": artifact.path.stat().st_size,
        "language": artifact.language,
        "arch": artifact.arch,
        "labels": entity_types(artifact.labels),
        "crf": bool(header.get("crf")),
        "encoder": pretrained_encoder(header),
        "training_data": {"corpus": data.get("corpus"), "sentences": data.get("sentences"),
                          "validation_held_out": data.get("validation_held_out"),
                          "corpora": data.get("training_corpora"), "weights": data.get("weights"),
                          "init": data.get("init"), "teachers": data.get("teachers")},
        "license": provenance.get("license"),
        "scores": {"validation_f1": micro_f1(metrics, "validation"), "test_f1_float32": micro_f1(metrics, "test"),
                   "test_f1_file": recorded_test_f1(header),
                   "measured_on": (quantization or {}).get("measured_on")},
        "quantization": None if not quantization else {
            "method": quantization.get("method"), "test_f1_float32": quantization.get("test_f1_fp32"),
            "test_f1_int8": quantization.get("test_f1_int8"), "float32_bytes": quantization.get("fp32_bytes")},
        # A file of several heads (seeds of one recipe): each head's seed and training scores.
        "heads": [{"seed": head.get("config", {}).get("seed"),
                   "validation_f1": micro_f1(head.get("metrics", {}), "validation"),
                   "test_f1_float32": micro_f1(head.get("metrics", {}), "test")}
                  for head in provenance.get("heads", [])],
        "trained_at": provenance.get("trained_at"), "exported_at": provenance.get("exported_at"),
        "commit": provenance.get("export_git_sha"),
        "providers_here": [p.removesuffix("ExecutionProvider") for p in providers],
    }


def model_info(model: str) -> list[dict[str, Any]]:
    """`describe` of each file `model` names."""
    return [describe(load_artifact(path, "cpu")) for path in resolve(model)[0]]


def catalogue() -> list[dict[str, Any]]:
    """Every shipped choice `--lang`/`--arch` (and `--model NAME`) can name: the default of each
    language (`uk`) or family (`uk13`), then each choice by its own name, the default's too (`uk_bert`,
    `uk_bert+lstm`), with labels, files, sizes and recorded test F1."""
    from tagger.shipped import ARCH_CHOICES, AVERAGE_TEST_F1, BEST_FIRST, language_of, shipped_choice

    entries = []
    headers_of: dict[Path, Header] = {}  # a file serves its own entry and its language's default
    for lang in BEST_FIRST:  # a language, or a family of one (uk13)
        for arch in (None, *ARCH_CHOICES):
            try:
                choice, paths, weights = shipped_choice(lang, arch)
            except ArtifactError:
                continue
            headers = [headers_of.setdefault(p, load_artifact(p, "cpu").header) for p in paths]
            single = len(paths) == 1
            entries.append({
                "name": lang if arch is None else f"{lang}_{arch}",
                "lang": language_of(lang),
                "arch": choice,  # bert+uk13: which shipped files, not only their archs
                "default": arch is None,
                "labels": entity_types(headers[0]["labels"]),
                "files": [{"file": p.name, "bytes": p.stat().st_size} for p in paths],
                "weights": weights,
                "test_f1": recorded_test_f1(headers[0]) if single else AVERAGE_TEST_F1.get(f"{lang}_{choice}"),
                "license": joined_licenses(str(h.get("provenance", {}).get("license", "")) for h in headers),
            })
    return entries
