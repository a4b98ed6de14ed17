"""The two corpora: where they live (Hub name or local folder) and how to read a split locally."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tagger.conll import Sentence, read_conll, read_lines
from tagger.errors import DataFormatError, TaggerError
from tagger.scheme import entity_types

SPLITS = ("train", "validation", "test")
DATA_ENV = "TAGGER_DATA"  # a corpus folder, or a folder holding `ner-uk/` and `wnut17/`
DATA_METAVAR = "DIR|HUB_NAME"  # what --data takes: a folder (checked where it is read), or a Hub name of KNOWN


@dataclass(frozen=True)
class Corpus:
    """A named-entity corpus of one language."""

    lang: str
    hub_name: str  # Hugging Face dataset name, for users who are online
    folder: str  # name of its local folder under $TAGGER_DATA
    labels: tuple[str, ...]  # id order of the Hub dataset
    license: str


CORPORA: dict[str, Corpus] = {
    "uk": Corpus(
        "uk",
        "benjamin/ner-uk",
        "ner-uk",
        ("O", "B-PERS", "I-PERS", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"),
        "CC BY-NC-SA 4.0 (lang-uk ner-uk: non-commercial use, share alike, credit lang-uk)",
    ),
    "en": Corpus(
        "en",
        "wnut_17",
        "wnut17",
        (
            "O", "B-corporation", "I-corporation", "B-creative-work", "I-creative-work",
            "B-group", "I-group", "B-location", "I-location", "B-person", "I-person",
            "B-product", "I-product",
        ),
        "CC BY 4.0 (WNUT-17, Derczynski et al. 2017)",
    ),
}
_NER_UK_2_TYPES = ("ORG", "PERS", "LOC", "MON", "PCT", "DATE", "TIME", "PERIOD", "JOB", "DOC", "QUANT", "ART", "MISC")
# Further corpora a run may name (`--data`, `--extra-train`): known by their folder or Hub name.
FURTHER = (
    Corpus("uk", "Goader/ner-uk-2.0", "ner-uk-2.0", ("O", *(f"{p}-{t}" for t in _NER_UK_2_TYPES for p in "BI")),
           "CC BY-NC-SA 4.0 (lang-uk ner-uk 2.0: non-commercial use, share alike, credit lang-uk)"),
    # ner-uk 2.0's DEV documents projected onto ner-uk's four types: a local derivation, not on the Hub.
    Corpus("uk", "", "ner-uk-2.0-4types", CORPORA["uk"].labels,
           "CC BY-NC-SA 4.0 (lang-uk ner-uk 2.0, projected to 4 types: non-commercial use, share alike, credit lang-uk)"),
)
KNOWN = {c.folder: c for c in (*CORPORA.values(), *FURTHER)}
# Train splits that hold documents of another corpus's validation or test split (the corpora's
# READMEs): a model that learned from the first must not be selected or scored on the second.
LEAKS = {("ner-uk", "ner-uk-2.0"): "ner-uk's train split holds 36 documents of ner-uk 2.0's test split"}
# How one corpus's entity types read in another's scheme, the types left out being no entity there:
# ner-uk 2.0 in ner-uk's v1 scheme, the projection that made ner-uk-2.0-4types (its README).
PROJECTIONS = {
    ("ner-uk-2.0", "ner-uk"): {"PERS": "PERS", "ORG": "ORG", "LOC": "LOC", "ART": "MISC", "DOC": "MISC", "MISC": "MISC"},
}


def type_projection(source: Sequence[str], target: Sequence[str]) -> dict[str, str] | None:
    """The known map of entity types `source` onto entity types `target` (each a corpus's set of
    types, in any order), or None where no projection between those schemes is known."""

    def types_of(folder: str) -> set[str]:
        return set(entity_types(KNOWN[folder].labels))

    return next((types for (a, b), types in PROJECTIONS.items()
                 if types_of(a) == set(source) and types_of(b) == set(target)), None)


def corpus_of(lang: str) -> Corpus:
    """The corpus of a language code."""
    try:
        return CORPORA[lang]
    except KeyError:
        raise TaggerError(f"unknown language {lang!r}; choose one of: {', '.join(CORPORA)}") from None


def corpus_at(folder: Path | None, lang: str) -> Corpus:
    """The corpus a local folder holds, known by the folder's name; else (any other folder, or the
    Hub) `lang`'s corpus."""
    known = KNOWN.get(folder.name) if folder is not None else None
    return known if known is not None and known.lang == lang else corpus_of(lang)


def known_corpus(name: str | None, lang: str) -> Corpus:
    """The corpus a model's header names (its Hub name or folder, as training recorded it), if known
    and of `lang`; else `lang`'s own corpus."""
    found = next((c for c in KNOWN.values() if name and name in (c.hub_name, c.folder)), None)
    return found if found is not None and found.lang == lang else corpus_of(lang)


def data_root(data: str | Path | None) -> str | Path | None:
    """What `--data` names: `data`, else $TAGGER_DATA, else None (the Hub)."""
    return data if data is not None else os.environ.get(DATA_ENV) or None


def hub_named(data: str | Path | None) -> Corpus | None:
    """The known corpus whose Hub name `data` is (`Goader/ner-uk-2.0`), where no local path is called
    so: such a `--data` reads that corpus from the Hugging Face Hub, as users who are online do."""
    if data is None or Path(data).exists():
        return None
    return next((c for c in KNOWN.values() if c.hub_name and c.hub_name == str(data)), None)


def hub_names() -> str:
    """The known corpora's Hub names, for messages that say which a `--data` may name."""
    return ", ".join(c.hub_name for c in KNOWN.values() if c.hub_name)


def corpus_for(lang: str, data: str | Path | None = None, corpus: Corpus | None = None) -> Corpus:
    """The corpus a split is read from: `corpus` if given, else the one `data` names by its Hub name,
    else `lang`'s."""
    return corpus or hub_named(data_root(data)) or corpus_of(lang)


def local_folder(lang: str, data: str | Path | None = None, corpus: Corpus | None = None) -> Path | None:
    """The local folder of `corpus` (default: the corpus `data` names, else `lang`'s): `data`, else
    $TAGGER_DATA; None (read the Hub) if neither is set or it is the corpus's Hub name.

    Either may name the corpus folder itself (holding train/validation/test.conll) or a
    parent folder holding it under the corpus's folder name (`ner-uk/`, `wnut17/`, `ner-uk-2.0/`).
    """
    root = data_root(data)
    if root is None:
        return None
    named = hub_named(root)
    wanted = corpus or named or corpus_of(lang)
    if named is not None:
        if named.lang != lang:
            raise TaggerError(f"{root}: the Hub's {named.folder}, a corpus in {named.lang}, not {lang};"
                              f" pass --lang {named.lang}, or a {lang} corpus")
        if named != wanted:  # a model is scored on its own corpus
            raise TaggerError(f"{root}: the Hub's {named.folder}, but this model is scored on {wanted.folder};"
                              f" name {wanted.hub_name or 'its local folder'}, or a local folder holding it")
        return None
    root, folder = Path(root), wanted.folder
    if not root.is_dir():
        raise TaggerError(f"{root}: {'not a folder' if root.exists() else 'no such folder'}, nor a known corpus's Hub"
                          f" name ({hub_names()}); point at a corpus folder, or name one of those to read it from the Hub")
    for candidate in (root, root / folder):
        if (candidate / "train.conll").is_file() or (candidate / "test.conll").is_file():
            return candidate
    raise TaggerError(
        f"{root}: no {folder} corpus there; expected train.conll, validation.conll,"
        f" test.conll (and labels.txt) in it or in {root / folder}"
    )


def read_labels(folder: Path, lang: str) -> list[str]:
    """The label list of a local corpus: its labels.txt, else the corpus's known labels."""
    path = folder / "labels.txt"
    if not path.is_file():
        return list(corpus_of(lang).labels)
    return [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def read_local_split(folder: Path, lang: str, split: str) -> list[Sentence]:
    """One split of a local corpus folder."""
    if split not in SPLITS:
        raise TaggerError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    return read_conll(folder / f"{split}.conll", read_labels(folder, lang))


def load_split(lang: str, split: str, data: str | Path | None = None, corpus: Corpus | None = None) -> list[Sentence]:
    """One split of `corpus` (default: the one `data` names, else `lang`'s), from a local folder if
    given, else from the Hugging Face Hub."""
    folder = local_folder(lang, data, corpus)
    if folder is not None:
        return read_local_split(folder, lang, split)
    return hub_corpus(corpus_for(lang, data, corpus), (split,))[1][split]


def named_documents(names: Sequence[str], prefix: str, option: str, split: str, source: str | Path) -> list[int]:
    """The positions of `names` (each sentence's document) that start with `prefix`; a TaggerError naming
    `option`, the split and its source, with the names' first folders, when none does."""
    keep = [i for i, name in enumerate(names) if name.startswith(prefix)]
    if not keep:
        some = sorted({name.split("/")[0] + "/" if "/" in name else name for name in names})  # folders, or names
        raise TaggerError(f"{option} {prefix}: no {split} document of {source} starts with it (its names start"
                          f" e.g. {', '.join(some[:4])}); see its documents.tsv")
    return keep


def document_ids(folder: Path, split: str, sentences: list[Sentence]) -> list[str]:
    """Each sentence's document name, from the folder's `documents.tsv` (split, document, sentences,
    tokens, ... per document in file order, as the local ner-uk conversion writes it).

    The token counts are checked, so a table that does not match the split is refused.
    """
    path = folder / "documents.tsv"
    if not path.is_file():
        raise TaggerError(f"{path}: no such file; document boundaries come from a documents.tsv beside"
                          f" {split}.conll (the local ner-uk folder has one; Hub splits and WNUT-17 have none)")
    ids: list[str] = []
    lines = read_lines(path)  # UTF-8, BOM and CRLF tolerated; bad bytes name their line
    header = next(lines, (1, ""))[1].split("\t")
    for line_no, line in lines:
        row = dict(zip(header, line.split("\t")))
        if row.get("split") != split:
            continue
        try:
            name, count, tokens = row["document"], int(row["sentences"]), int(row["tokens"])
        except (KeyError, ValueError):
            raise DataFormatError(str(path), line_no, "expected the columns split, document, sentences,"
                                  " tokens with whole numbers") from None
        if sum(len(s.words) for s in sentences[len(ids) : len(ids) + count]) != tokens:
            raise DataFormatError(str(path), line_no, f"document {name} should hold {tokens} tokens in"
                                  f" {count} sentences from sentence {len(ids) + 1} of {split}.conll;"
                                  " the table does not match the split")
        ids += [name] * count
    if len(ids) != len(sentences):
        raise TaggerError(f"{path}: its {split} documents cover {len(ids)} sentences but {split}.conll has"
                          f" {len(sentences)}; the table does not match the split")
    return ids


HUB_TIMEOUT = 3.0  # seconds to reach the Hub before saying it is unreachable


def check_hub(name: str, hint: str) -> None:
    """Fail at once, not after half a minute of retries, where the Hub cannot be reached.

    Honours HF_ENDPOINT (a mirror), and leaves HF_HUB_OFFLINE / HF_DATASETS_OFFLINE to
    `datasets` (which then reads its cache).
    """
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE"):
        return
    import socket  # here: only a Hub read needs it, and `tag` imports this module at every start

    url = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=HUB_TIMEOUT).close()
    except OSError as err:
        raise TaggerError(f"cannot reach the Hugging Face Hub ({url.hostname}: {err.strerror or err}) to load"
                          f" {name}; {hint}") from None


def hub_corpus(corpus: Corpus, splits: Sequence[str] = SPLITS) -> tuple[list[str], dict[str, list[Sentence]]]:
    """The label names and the given splits of a corpus from the Hugging Face Hub, as sentences.

    The one place a `datasets.DatasetDict` is read: everything past it works on sentences.
    """
    if not corpus.hub_name:
        raise TaggerError(f"{corpus.folder} has no Hugging Face Hub copy; point at its local folder")
    hint = (
        f"point at a local copy with --data DIR or ${DATA_ENV}=DIR (a folder with train.conll,"
        " validation.conll, test.conll, labels.txt)"
    )
    try:
        import datasets  # lazy: only for users who read the Hub
    except ImportError:
        raise TaggerError(
            f"reading {corpus.hub_name} from the Hub needs `pip install 'tagger[train]'`; or {hint}"
        ) from None
    check_hub(corpus.hub_name, hint)
    try:
        loaded = datasets.load_dataset(corpus.hub_name)
    except Exception as err:  # noqa: BLE001 - any network/Hub failure gets the same advice
        raise TaggerError(
            f"could not load {corpus.hub_name} from the Hugging Face Hub ({type(err).__name__}); {hint}"
        ) from None
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise TaggerError(f"{corpus.hub_name} has no {', '.join(missing)} split")
    names = hub_label_names(loaded[splits[0]].features["ner_tags"], corpus)
    return names, {
        split: [Sentence(list(row["tokens"]), [names[i] for i in row["ner_tags"]]) for row in loaded[split] if row["tokens"]]
        for split in splits
    }


def hub_label_names(feature: object, corpus: Corpus) -> list[str]:
    """Label names of a Hub `ner_tags` feature (a List of ClassLabel, or of plain ints)."""
    inner = getattr(feature, "feature", None)
    names = getattr(inner, "names", None)
    return list(names) if names else list(corpus.labels)
