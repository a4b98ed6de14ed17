"""A cascade: the uk pair on every sentence, the third model only where the pair is unsure.

    python scripts/cascade.py --data ../shared/data/ner-uk --pair uk_bert HELD_OUT_LSTM.onnx --third uk13 \
        --taus 0,0.5,0.7,0.8,0.9,0.95,1.01 --margins full,32,64 --splits validation

For each threshold tau, a sentence is "unsure" when some word's most probable label has a pair
probability below tau (the pair: `--pair` averaged with `--pair-weights`); unsure sentences take the
average of all three (`--triple-weights`), the others the pair's. Printed per split and reading (as
one text, by document): entity micro F1 and the share of sentences, words and third-model encoder
pieces the cascade runs (the windows whose scored words hold an unsure sentence's words; a window's
scores do not depend on which other windows run, so these are the cascade's exact figures). tau 0 is
the pair alone, tau above 1 the triple. Each model runs once per split and reading.
"""

from __future__ import annotations

import argparse
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import cast

import numpy as np

from tagger.api import load
from tagger.corpus import document_ids, read_labels, read_local_split
from tagger.ensemble import Ensemble, parse_weights
from tagger.metrics import score
from tagger.predict import BertEmitter, Tagger, labelled
from tagger.scheme import entity_types
from tagger.subwords import Window, join_runs, plan_windows, window_sizes


def sentence_marks(lengths: Sequence[Sequence[int]]) -> list[list[int]]:
    """For each joined text, the index of the original sentence each of its words came from."""
    marks, k = [], 0
    for parts in lengths:
        row = []
        for n in parts:
            row += [k] * n
            k += 1
        marks.append(row)
    return marks


def focused_windows(counts: Sequence[int], first: int, last: int, capacity: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Windows that score words [first, last) of a text whose words have `counts` pieces: one window
    of the words and up to `margin` pieces of context on each side, or, where that does not fit,
    the text's own windows that score those words (their kept words cut to the range)."""
    if sum(counts[first:last]) + 2 * margin > capacity:
        return [(s, e, max(ks, first), min(ke, last)) for s, e, ks, ke in plan_windows(counts, capacity)
                if ks < last and ke > first]
    start, budget = first, margin
    while start > 0 and counts[start - 1] <= budget:
        budget -= counts[start - 1]
        start -= 1
    end, budget = last, margin
    while end < len(counts) and counts[end] <= budget:
        budget -= counts[end]
        end += 1
    return [(start, end, first, last)]


def third_scores(third: Tagger, sentences: Sequence[Sequence[str]], runs: Sequence[Hashable] | None,
                 margin: int | None) -> tuple[list[np.ndarray], list[tuple[int, set[int]]], int]:
    """The third BERT's word scores of every sentence; each window it reads, as its pieces and the
    sentences whose words it scores (margin None: the text's own windows, as a full run reads them;
    else a focused window per sentence); and the pieces of a full run. Windows run alone score alike
    in any batch, so a cascade that runs only the windows of unsure sentences computes these scores."""
    assert isinstance(third.emit, BertEmitter), "the third model must be a BERT"
    encoder = third.emit.encoder
    joined, lengths = join_runs(sentences, runs) if encoder.document_context else (
        [list(s) for s in sentences], [[len(s)] for s in sentences])
    plan, pieces = encoder.windows(joined)
    full = sum(window_sizes(plan, pieces))
    windows = plan
    if margin is not None:
        windows = []
        for text, parts in enumerate(lengths):
            counts, first = [len(p) for p in pieces[text]], 0
            for n in parts:
                if n:
                    windows += [Window(text, *w) for w in focused_windows(counts, first, first + n, encoder.max_pieces - 2, margin)]
                first += n
    marks = sentence_marks(lengths)
    paid = [(size, set(marks[w.sentence][w.keep_start : w.keep_end])) for w, size in zip(windows, window_sizes(windows, pieces))]
    scores = encoder.scored(windows, pieces, third.emit.windows, third.emit.num_labels)
    out = [part for text, sizes in zip(scores, lengths) for part in np.split(text, np.cumsum(sizes)[:-1])]
    return out, paid, full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the corpus folder (with documents.tsv)")
    parser.add_argument("--pair", nargs=2, required=True, help="the two models run on every sentence")
    parser.add_argument("--third", required=True, help="the BERT run only for unsure sentences")
    parser.add_argument("--pair-weights", default="0.6,0.4")
    parser.add_argument("--triple-weights", default="0.34,0.33,0.33", help="pair's two models, then the third")
    parser.add_argument("--taus", default="0,0.5,0.7,0.8,0.9,0.95,0.99,1.01")
    parser.add_argument("--margins", default="full,32,64",
                        help="how the third reads an unsure sentence: 'full' its own windows of the text, N one"
                        " window of the sentence and up to N pieces of context on each side")
    parser.add_argument("--splits", default="validation")
    args = parser.parse_args()
    loaded = [load(model=name).model for name in [*args.pair, args.third]]
    if not all(isinstance(m, Tagger) for m in loaded):
        parser.error("give single model files or names, not averages")
    members = cast(list[Tagger], loaded)
    pair = Ensemble(members[:2], parse_weights(args.pair_weights))
    triple = Ensemble(members, parse_weights(args.triple_weights))
    types = entity_types(read_labels(args.data, members[0].language))
    taus = [float(t) for t in args.taus.split(",")]
    margins = [None if m == "full" else int(m) for m in args.margins.split(",")]
    print("| split | reading | third reads | tau | F1 | unsure sentences | words | third's pieces |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for split in args.splits.split(","):
        gold = read_local_split(args.data, members[0].language, split)
        sentences, tags = [s.words for s in gold], [s.tags for s in gold]
        words = sum(len(s) for s in sentences)
        for reading, runs in (("one text", None), ("by document", document_ids(args.data, split, gold))):
            each = [m.emit(sentences, runs) for m in members[:2]]
            pair_scores = pair.average(each)
            sure = [float(np.exp(p).max(axis=1).min()) if len(p) else 1.0 for p in pair_scores]
            for margin in margins:
                third, paid, full = third_scores(members[2], sentences, runs, margin)
                triple_scores = triple.average([*each, third])
                for tau in taus:
                    unsure = [s < tau for s in sure]
                    mixed = [t if u else p for p, t, u in zip(pair_scores, triple_scores, unsure)]
                    f1 = score(tags, labelled(pair.decoder, pair.labels, mixed), types=types).micro.f1
                    # a window is paid once, however many unsure sentences it scores
                    needed = sum(size for size, scored in paid if any(unsure[k] for k in scored))
                    share_words = sum(len(s) for s, u in zip(sentences, unsure) if u) / words
                    print(f"| {split} | {reading} | {'its windows' if margin is None else f'sentence ± {margin}'} |"
                          f" {tau:g} | {f1:.4f} | {sum(unsure) / len(unsure):.1%} | {share_words:.1%} |"
                          f" {needed / full:.1%} |", flush=True)


if __name__ == "__main__":
    main()
