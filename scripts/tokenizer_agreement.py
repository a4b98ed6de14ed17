"""Agreement of `tagger.text` with the ner-uk corpus tokenisation and sentence splitting.

For every raw document (raw/<split>/<doc>.txt) the corpus tokens of that document (recovered
from <split>.conll with documents.tsv) are aligned to the raw text to get gold character
spans; `tokenize(raw, "uk")` and `split_sentences(raw, "uk")` are scored against them.

    PYTHONPATH=. python scripts/tokenizer_agreement.py [--data DIR] [--split test] [--top 20]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from tagger.conll import read_conll
from tagger.corpus import document_ids
from tagger.text import split_sentences, tokenize

REPO = Path(__file__).resolve().parent.parent
SPLITS = ("train", "validation", "test")
Span = tuple[int, int]


def documents(data: Path, split: str) -> list[tuple[str, str, list[list[str]]]]:
    """(name, raw text, corpus sentences) of each document of `split` that has raw text."""
    sentences = read_conll(data / f"{split}.conll")
    words: dict[str, list[list[str]]] = {}
    for name, sentence in zip(document_ids(data, split, sentences), sentences):  # in file order
        words.setdefault(name, []).append(sentence.words)
    out = []
    for name, doc in words.items():
        raw = data / "raw" / split / f"{name}.txt"
        if raw.exists():  # a few documents have no raw text; their counts let us skip them
            with open(raw, encoding="utf-8", newline="") as f:  # exact text, no \r translation
                out.append((name, f.read(), doc))
    return out


def align(raw: str, sentences: list[list[str]]) -> list[list[Span]]:
    """Gold character spans of the corpus tokens (their concatenation is `raw` minus whitespace)."""
    pos, out = 0, []
    for sentence in sentences:
        spans = []
        for tok in sentence:
            while raw[pos].isspace():
                pos += 1
            if raw[pos : pos + len(tok)] != tok:
                raise SystemExit(f"cannot align {tok!r} at {pos}: {raw[pos : pos + 40]!r}")
            spans.append((pos, pos + len(tok)))
            pos += len(tok)
        out.append(spans)
    return out


def disagreements(raw: str, gold: set[Span], pred: set[Span]) -> list[str]:
    """Clusters of overlapping unmatched gold/predicted spans, as 'gold ⇒ predicted' strings."""
    events = sorted([(s, e, "g") for s, e in gold - pred] + [(s, e, "p") for s, e in pred - gold])
    out: list[str] = []
    cluster: list[tuple[int, int, str]] = []
    for ev in events + [(len(raw) + 1, 0, "")]:
        if cluster and ev[0] >= max(e for _, e, _ in cluster):
            g = " ".join(raw[s:e] for s, e, k in cluster if k == "g")
            p = " ".join(raw[s:e] for s, e, k in cluster if k == "p")
            out.append(f"{g or '∅'}  ⇒  {p or '∅'}")
            cluster = []
        cluster.append(ev)
    return out


def boundary_diffs(raw: str, gold: set[int], pred: set[int]) -> list[str]:
    """Sentence starts found by only one side, as 'missed/extra: <left word> ⟦<right word>'."""
    out = []
    for kind, starts in (("missed", gold - pred), ("extra", pred - gold)):
        for pos in starts:
            left = raw[max(0, pos - 30) : pos].split()
            right = raw[pos : pos + 30].split()
            out.append(f"{kind}: {left[-1] if left else ''} ⟦{right[0] if right else ''}")
    return out


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Precision, recall and F1 (in %)."""
    p = 100 * tp / n_pred if n_pred else 0.0
    r = 100 * tp / n_gold if n_gold else 0.0
    return p, r, 2 * p * r / (p + r) if p + r else 0.0


def main() -> None:
    """Score every requested split and the union, then list the top disagreements."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data" / "ner-uk")
    ap.add_argument("--split", choices=SPLITS, action="append", help="repeatable; default: all")
    ap.add_argument("--top", type=int, default=20, help="how many disagreement classes to list")
    args = ap.parse_args()
    total = Counter[str]()
    diffs = Counter[str]()
    sdiffs = Counter[str]()
    for split in args.split or SPLITS:
        c = Counter[str]()
        docs = documents(args.data, split)
        for _, raw, sentences in docs:
            gold_sents = align(raw, sentences)
            gold = {span for s in gold_sents for span in s}
            pred_sents = split_sentences(raw, "uk")
            pred = {(t.start, t.end) for t in tokenize(raw, "uk")}
            if pred != {(t.start, t.end) for s in pred_sents for t in s}:
                raise SystemExit("split_sentences and tokenize disagree on tokens")
            gold_starts = {s[0][0] for s in gold_sents}
            pred_starts = {s[0].start for s in pred_sents}
            c.update(docs=1, gold=len(gold), pred=len(pred), tp=len(gold & pred))
            c.update(
                sgold=len(gold_starts), spred=len(pred_starts), stp=len(gold_starts & pred_starts)
            )
            diffs.update(disagreements(raw, gold, pred))
            sdiffs.update(boundary_diffs(raw, gold_starts, pred_starts))
        total.update(c)
        report(split, c)
    if len(args.split or SPLITS) > 1:
        report("all", total)
    print(f"\n{args.top} most frequent token disagreements (corpus  ⇒  tokenizer):")
    for text, n in diffs.most_common(args.top):
        print(f"{n:6d}  {text}")
    print(f"\n{args.top} most frequent sentence-start disagreements (⟦ marks the start):")
    for text, n in sdiffs.most_common(args.top):
        print(f"{n:6d}  {text}")


def report(name: str, c: Counter[str]) -> None:
    """Print one line of token and sentence-boundary scores."""
    p, r, f = prf(c["tp"], c["pred"], c["gold"])
    sp, sr, sf = prf(c["stp"], c["spred"], c["sgold"])
    print(
        f"{name:<10} docs {c['docs']:4d}  corpus tokens {c['gold']:7d}  "
        f"token P {p:6.2f} R {r:6.2f} F1 {f:6.2f}  |  sentence starts {c['sgold']:6d}  "
        f"P {sp:6.2f} R {sr:6.2f} F1 {sf:6.2f}"
    )


if __name__ == "__main__":
    main()
