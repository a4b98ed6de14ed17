"""The shipped models (`assets/`, installed as `tagger.assets`): which file, or files averaged, each language uses."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tagger.errors import ArtifactError
from tagger.header import ARCHS

# The shipped choices of each language, best test micro F1 first (tests/test_assets.py measures it).
# uk: the seed-3 BERT alone (0.8602) beats its average with the BiLSTM (0.8537), which reads whole
# documents and raw text better (0.8684 / 0.8669 against 0.8525 / 0.8442). en: the average beats
# either; the en BiLSTM over frozen e5 features edges out fine-tuned e5.
# Besides the languages (what --lang picks), a name may be a family of one language with other
# labels, reached by --model NAME: uk13 = ner-uk 2.0's 13 types (dates, money, jobs, laws, ...).
BEST_FIRST = {"uk": ("bert", "bert+lstm", "lstm"), "en": ("bert+lstm", "lstm", "bert"), "uk13": ("bert",)}
LANGUAGE = {"uk13": "uk"}  # the text language of a name that is not a language code
ARCH_CHOICES = ("+".join(sorted(ARCHS)), *sorted(ARCHS))  # what `tag --arch` takes: an arch, or both averaged
# Each arch's weight in an average, chosen on uk validation with models that never saw it (README,
# "Averaging"): 0.6/0.4 was best for 5 of 6 BERT seeds; at 0.5/0.5 the gain over BERT alone on test was noise.
ARCH_WEIGHTS = {"bert": 0.6, "lstm": 0.4}


def shipped_files() -> list[Path]:
    """Every shipped model file (`tagger.assets/*.onnx`), sorted by name."""
    return sorted(Path(str(p)) for p in resources.files("tagger.assets").iterdir() if p.name.endswith(".onnx"))


def language_of(name: str) -> str:
    """The text language of a shipped name (`uk13` -> `uk`; a language is its own)."""
    return LANGUAGE.get(name, name)


def shipped_models(lang: str, arch: str | None = None) -> tuple[list[Path], list[float]]:
    """The shipped model files of `lang` (a language, or a name of BEST_FIRST) for `arch`, or its
    best shipped choice, with their weights."""
    folder = resources.files("tagger.assets")
    archs = [arch] if arch else list(BEST_FIRST.get(lang, ARCH_CHOICES))
    for choice in archs:
        names = choice.split("+")
        candidates = [folder / f"{lang}_{name}.onnx" for name in names]
        if all(c.is_file() for c in candidates):
            weights = [ARCH_WEIGHTS[name] for name in names] if len(names) > 1 else [1.0]
            return [Path(str(c)) for c in candidates], weights
    shipped = [p.name for p in shipped_files()]
    raise ArtifactError(
        f"no shipped {' or '.join(archs)} model for language {lang!r} (shipped: {', '.join(shipped) or 'none'});"
        " pass --model FILE.onnx"
    )
