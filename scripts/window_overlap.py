"""What the BERT windows' overlap costs: encoder pieces per word, and entity F1, at several overlaps.

    python scripts/window_overlap.py --data ../shared/data/ner-uk assets/uk_bert.onnx [--overlaps 4,8,16]

A sentence (or, with document context, a document) longer than a window is read as overlapping windows;
consecutive windows re-read about 1/N of a window (`tagger.subwords.OVERLAP`, N = 4 as shipped). Fewer
re-read pieces mean less encoder work per word, and less context for the words next to a cut. For each N
this prints, on the validation and test splits (read as one text, as training reads them, and document by
document, as `tag` reads files): F1 and the encoder pieces per word (<s> and </s> included). Inference
only: the model is the one given, trained at N = 4.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import tagger.subwords as subwords
from tagger.api import evaluate, load


def counting(tally: dict[str, int]):  # noqa: ANN201
    """plan_windows, counting the pieces of the windows it plans and the words they cover."""
    plan = subwords.plan_windows

    def planned(counts: Sequence[int], capacity: int) -> list[tuple[int, int, int, int]]:
        windows = plan(counts, capacity)
        tally["pieces"] += sum(sum(counts[s:e]) + 2 for s, e, _, _ in windows)
        tally["words"] += len(counts)
        return windows

    return planned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a BERT tagger's ONNX file")
    parser.add_argument("--data", required=True, help="the corpus folder (with documents.tsv)")
    parser.add_argument("--overlaps", default="4,8,16", help="values of N: windows re-read 1/N of a window")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    nlp = load(model=args.model, threads=args.threads)
    tally = {"pieces": 0, "words": 0}
    subwords.plan_windows = counting(tally)
    print("| re-read | split | F1 (as one text) | pieces/word | F1 (by document) | pieces/word | seconds |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for n in (int(x) for x in args.overlaps.split(",")):
        subwords.OVERLAP = n
        for split in ("validation", "test"):
            cells, start = [], time.perf_counter()
            for by_document in (False, True):
                tally.update(pieces=0, words=0)
                report = evaluate(nlp, split, args.data, by_document=by_document)
                cells += [f"{report.micro.f1:.4f}", f"{tally['pieces'] / max(tally['words'], 1):.3f}"]
            print(f"| 1/{n} | {split} | " + " | ".join(cells) + f" | {time.perf_counter() - start:.1f} |", flush=True)


if __name__ == "__main__":
    main()
