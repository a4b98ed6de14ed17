"""The shipped models: loadable, named for what they are, licensed as their data, and within budget."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from tagger.artifact import load_artifact
from tagger.errors import ArtifactError
from tagger.predict import Tagger
from tagger.shipped import ARCHS, shipped_models

BUDGET_BYTES = 150_000_000  # all shipped models together
SHIPPED = sorted(Path(str(p)) for p in resources.files("tagger.assets").iterdir() if p.name.endswith(".onnx"))


def test_something_is_shipped_and_within_budget() -> None:
    assert SHIPPED, "no model in assets/"
    assert sum(p.stat().st_size for p in SHIPPED) < BUDGET_BYTES


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_model_is_what_its_name_says(path: Path) -> None:
    artifact = load_artifact(path, "cpu")
    lang, kind = path.stem.split("_")
    assert (artifact.language, artifact.kind) == (lang, kind)
    license_ = artifact.header["provenance"]["license"]
    assert ("CC BY-NC-SA 4.0" if lang == "uk" else "CC BY 4.0") in license_
    quantization = artifact.header.get("quantization")
    if quantization is not None:  # shipped INT8 only where it costs at most half an F1 point
        assert quantization["test_f1_fp32"] - quantization["test_f1_int8"] <= 0.005
    words = {"uk": ["Тарас", "Шевченко", "народився", "в", "Моринцях", "."],
             "en": ["Tim", "Cook", "visited", "London", "."]}[lang]
    assert len(Tagger(artifact).tag([words])[0]) == len(words)


@pytest.mark.parametrize("lang", ["uk", "en"])
def test_the_default_of_a_language_is_its_best_shipped_choice(lang: str) -> None:
    """Measured on the real test split: the default (a model, or models averaged) scores highest;
    each family stays reachable with --arch."""
    from conftest import shared_corpus
    from tagger.corpus import load_split
    from tagger.ensemble import combined
    from tagger.evaluate import evaluate

    choices = {arch: choice for arch in ARCHS if (choice := available(lang, arch))}
    if len(choices) < 2:
        pytest.skip(f"fewer than two {lang} choices shipped: nothing to choose between")
    gold = load_split(lang, "test", shared_corpus({"uk": "ner-uk", "en": "wnut17"}[lang]))
    taggers = {p: Tagger(load_artifact(p, "cpu")) for paths, _ in choices.values() for p in paths}

    def f1(paths: list[Path], weights: list[float]) -> float:
        return evaluate(combined([taggers[p] for p in paths], weights), gold).micro.f1

    scores = {arch: f1(*choice) for arch, choice in choices.items()}
    assert shipped_models(lang) == choices[max(scores, key=scores.__getitem__)], scores
    for arch, (paths, _) in choices.items():
        assert [p.stem for p in paths] == [f"{lang}_{name}" for name in arch.split("+")]


def available(lang: str, arch: str) -> tuple[list[Path], list[float]] | None:
    """The shipped files of one choice and their weights, or None where a file is missing."""
    try:
        return shipped_models(lang, arch)
    except ArtifactError:
        return None
