"""What the BERT windows' overlap costs: encoder pieces per word, and entity F1, at several overlaps.

    python scripts/window_overlap.py --data ../shared/data/ner-uk assets/uk_bert.onnx [--overlaps 4,8,16]
    python scripts/window_overlap.py --data ../shared/data/ner-uk assets/uk_bert.onnx --overlaps 4 --margins 0,16,32

A sentence (or, with document context, a document) longer than a window is read as overlapping windows;
consecutive windows re-read about 1/N of a window (`tagger.subwords.OVERLAP`, N = 4 as shipped). Fewer
re-read pieces mean less encoder work per word, and less context for the words next to a cut. For each N
this prints, on the validation and test splits (read as one text, as training reads them, and document by
document, as `tag` reads files): F1 and the encoder pieces per word (<s> and </s> included). Inference
only: the model is the one given, trained at N = 4.

`--margins M,...`: windows cut at sentence boundaries instead (not what `tag` does): whole sentences
packed into a window of up to max_pieces - 2M pieces, read with up to M pieces of the text before and
after them as context, each sentence scored once (a sentence too long for that is cut as above).
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Hashable, Sequence

import numpy as np

import tagger.subwords as subwords
from tagger.api import evaluate, load


PLAN = subwords.plan_windows  # tag's own plan, before main() wraps it to count pieces


def count(tally: dict[str, int], counts: Sequence[int], plans: Sequence[tuple[int, int, int, int]]) -> None:
    """Add the pieces the planned windows read (<s> and </s> included) and the words they cover."""
    tally["pieces"] += sum(sum(counts[s:e]) + 2 for s, e, _, _ in plans)
    tally["words"] += len(counts)


def counting(tally: dict[str, int]):  # noqa: ANN201
    """plan_windows, counting the pieces of the windows it plans and the words they cover."""
    plan = subwords.plan_windows

    def planned(counts: Sequence[int], capacity: int) -> list[tuple[int, int, int, int]]:
        windows = plan(counts, capacity)
        count(tally, counts, windows)
        return windows

    return planned


def sentence_windows(counts: Sequence[int], sizes: Sequence[int], capacity: int,
                     margin: int) -> list[tuple[int, int, int, int]]:
    """`plan_windows`' (start, end, keep_start, keep_end) for windows that keep whole sentences (of
    `sizes` words) and read up to `margin` pieces of context on each side."""
    bounds = [0, *itertools.accumulate(sizes)]
    pieces = [sum(counts[a:b]) for a, b in zip(bounds, bounds[1:])]
    room, out, i = capacity - 2 * margin, [], 0
    while i < len(sizes):
        if pieces[i] > room:  # one sentence too long for a window: cut it as tag does
            a = bounds[i]
            out += [(a + s, a + e, a + ks, a + ke) for s, e, ks, ke in PLAN(counts[a : bounds[i + 1]], capacity)]
            i += 1
            continue
        j, used = i, 0
        while j < len(sizes) and used + pieces[j] <= room:
            used, j = used + pieces[j], j + 1
        start, end, left, right = bounds[i], bounds[j], 0, 0
        while start > 0 and left + counts[start - 1] <= margin:
            start, left = start - 1, left + counts[start - 1]
        while end < len(counts) and right + counts[end] <= margin:
            end, right = end + 1, right + counts[end]
        out.append((start, end, bounds[i], bounds[j]))
        i = j
    return out


def by_sentences(margin: int, tally: dict[str, int]):  # noqa: ANN201
    """SubwordEncoder.emissions with document windows cut at sentence boundaries (see --margins)."""

    def emissions(self: subwords.SubwordEncoder, sentences: Sequence[Sequence[str]], run: subwords.RunFn,
                  num_labels: int, runs: Sequence[Hashable] | None = None) -> list[np.ndarray]:
        joined, lengths = subwords.join_runs(sentences, runs)
        pieces = subwords.by_sentence(self.word_pieces, joined)
        windows = []
        for i, (word_ids, sizes) in enumerate(zip(pieces, lengths)):
            counts = [len(p) for p in word_ids]
            plans = sentence_windows(counts, sizes, self.max_pieces - 2, margin)
            count(tally, counts, plans)
            windows += [subwords.Window(i, *plan) for plan in plans]
        out = self.scored(windows, pieces, run, num_labels)
        return [part for text, parts in zip(out, lengths) for part in np.split(text, np.cumsum(parts)[:-1])]

    return emissions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a BERT tagger's ONNX file")
    parser.add_argument("--data", required=True, help="the corpus folder (with documents.tsv)")
    parser.add_argument("--overlaps", default="4,8,16", help="values of N: windows re-read 1/N of a window")
    parser.add_argument("--margins", default="", help="sentence-boundary windows with these context margins (pieces)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    nlp = load(model=args.model, threads=args.threads)
    tally = {"pieces": 0, "words": 0}
    subwords.plan_windows = counting(tally)
    print("| re-read | split | F1 (as one text) | pieces/word | F1 (by document) | pieces/word | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    plans = [(f"1/{n}", n, None) for n in (int(x) for x in args.overlaps.split(","))]
    plans += [(f"sentences, margin {m}", 4, by_sentences(m, tally)) for m in (int(x) for x in args.margins.split(",") if x)]
    shipped = subwords.SubwordEncoder.emissions
    for name, n, emissions in plans:
        subwords.OVERLAP = n
        subwords.SubwordEncoder.emissions = emissions or shipped  # type: ignore[method-assign]
        for split in ("validation", "test"):
            cells, start = [], time.perf_counter()
            for by_document in (False, True):
                tally.update(pieces=0, words=0)
                report = evaluate(nlp, split, args.data, by_document=by_document)
                cells += [f"{report.micro.f1:.4f}", f"{tally['pieces'] / max(tally['words'], 1):.3f}"]
            print(f"| {name} | {split} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.1f} |", flush=True)


if __name__ == "__main__":
    main()
