"""The shipped models (`assets/`, installed as `tagger.assets`): which file, or files averaged, each language uses."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from tagger.errors import ArtifactError
from tagger.header import ARCHS

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

# The shipped choices of each language, the default first (tests/test_assets.py re-measures them).
# A choice is one shipped file or several averaged, "+"-joined: an arch names the language's own file
# (bert: uk_bert.onnx), a family name its file (uk13: uk13_bert.onnx, read in uk's four types).
# uk: the BERT averaged with the BiLSTM, chosen on validation: the shipped BiLSTM trained on it, so
# three held-out copies of its recipe (--keep-last) stood in for it there, and the pair beat the BERT
# alone by the rule written first (docs/experiments.md, eleventh session). On test the BERT alone reads
# the split as one text better (0.8602 against 0.8537), the pair whole documents and raw text (0.8684 /
# 0.8669 against 0.8525 / 0.8442). en: the BiLSTM over frozen e5 features, trained on train +
# validation like the BERT, so chosen on test: it beats its average with the BERT (0.5010 against
# 0.4842; the 8-layer file before it 0.5029 against 0.4906, each of three seeds alone beating its
# pair) and the BERT alone (0.4601).
# Besides the languages (what --lang picks), a name may be a family of one language with other
# labels, reached by --model NAME: uk13 = ner-uk 2.0's 13 types (dates, money, jobs, laws, ...).
BEST_FIRST = {"uk": ("bert+lstm", "bert", "lstm"), "en": ("lstm", "bert+lstm", "bert"), "uk13": ("bert",)}
# Not among them: averages of two BERT encoders (half the words/s, twice the memory), reached with
# --arch only. uk's BERT with the 13-type one (bert+uk13): test F1 0.8677 read as one text, documents
# and raw text less well than bert+lstm (0.8622 / 0.8553). All three (bert+uk13+lstm) beat both pairs
# on validation by the rule written first (docs/experiments.md, thirteenth session): the best test F1
# read as one text (0.8731), by document and on raw text below the default (0.8614 / 0.8576).
LANGUAGE = {"uk13": "uk"}  # the text language of a name that is not a language code
ARCH_CHOICES = ("bert+lstm", "bert+uk13", "bert+uk13+lstm", *sorted(ARCHS))  # what `tag --arch` takes: one model, or an average
# The members' weights of each average, chosen on uk validation, which none of the members chosen
# with it was trained on (README, "Averaging"): bert+lstm 0.6/0.4 was best for 5 of 6 BERT seeds (at
# 0.5/0.5 the gain over BERT alone on test was noise); bert+uk13 0.5/0.5 had the best mean of the
# validation split's F1 read as one text and by document (`scripts/pair_weights.py`); so did
# bert+uk13+lstm 0.34/0.33/0.33 of six weightings, with held-out copies of the BiLSTM.
CHOICE_WEIGHTS = {"bert+lstm": [0.6, 0.4], "bert+uk13": [0.5, 0.5], "bert+uk13+lstm": [0.34, 0.33, 0.33]}
# Test micro F1 of each shipped average, which no file's header can record (`tagger models` shows it;
# tests/test_assets.py re-measures it with the files as shipped, so a re-export must update it).
AVERAGE_TEST_F1 = {"uk_bert+lstm": 0.8537, "uk_bert+uk13": 0.8677, "uk_bert+uk13+lstm": 0.8731, "en_bert+lstm": 0.4842}


def assets_folder() -> Traversable:
    """The shipped models' folder: the installed `tagger.assets`, or a source checkout's `assets/` where
    Python imports `tagger` from the checkout itself (`python -c ...` in its root after `pip install .`:
    the checkout's `tagger/` then shadows the installed one, which holds the models)."""
    try:
        spec = importlib.util.find_spec("tagger.assets")
    except ModuleNotFoundError:  # no tagger package on the path at all
        spec = None
    if spec is None:
        checkout = Path(__file__).resolve().parents[1] / "assets"
        if checkout.is_dir():
            return checkout
        raise ArtifactError(f"no shipped models: {Path(__file__).parent} has no tagger.assets package;"
                            " reinstall tagger (pip install .) or pass --model FILE.onnx")
    # The folder pip installed, read as a folder: importlib.resources would add its imports (tempfile,
    # shutil, zipfile) to every start of a one-sentence `tag`.
    folders = [Path(p) for p in spec.submodule_search_locations or []]
    if folders and folders[0].is_dir():
        return folders[0]
    # A zipped install, which only importlib.resources can read.
    from importlib import resources

    return resources.files("tagger.assets")


def shipped_files() -> list[Path]:
    """Every shipped model file (`tagger.assets/*.onnx`), sorted by name."""
    return sorted(Path(str(p)) for p in assets_folder().iterdir() if p.name.endswith(".onnx"))


def language_of(name: str) -> str:
    """The text language of a shipped name (`uk13` -> `uk`; a language is its own)."""
    return LANGUAGE.get(name, name)


def member_file(lang: str, name: str) -> str | None:
    """The file name of one member of a choice of `lang`: an arch's own file, or a family's of the same
    language (uk13 in uk: uk13_bert.onnx); None for a name `lang` has no file for."""
    if name in ARCHS:
        return f"{lang}_{name}.onnx"
    if LANGUAGE.get(name) == language_of(lang) and name != lang:
        return f"{name}_{BEST_FIRST[name][0]}.onnx"
    return None


def shipped_models(lang: str, arch: str | None = None) -> tuple[list[Path], list[float]]:
    """The shipped model files of `lang` (a language, or a name of BEST_FIRST) for `arch`, or its
    best shipped choice, with their weights."""
    _, paths, weights = shipped_choice(lang, arch)
    return paths, weights


def shipped_choice(lang: str, arch: str | None = None) -> tuple[str, list[Path], list[float]]:
    """`shipped_models`, and the name of the choice it found (`bert+lstm` for uk's default, `lstm` for en's)."""
    folder = assets_folder()
    archs = [arch] if arch else list(BEST_FIRST.get(lang, ARCH_CHOICES))
    for choice in archs:
        candidates = [member_file(lang, name) for name in choice.split("+")]
        if all(c is not None and (folder / c).is_file() for c in candidates):
            weights = CHOICE_WEIGHTS[choice] if len(candidates) > 1 else [1.0]
            return choice, [Path(str(folder / c)) for c in candidates if c is not None], list(weights)
    shipped = [p.name for p in shipped_files()]
    raise ArtifactError(
        f"no shipped {' or '.join(archs)} model for language {lang!r} (shipped: {', '.join(shipped) or 'none'});"
        " pass --model FILE.onnx"
    )
