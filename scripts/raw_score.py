"""Raw-text score: entity character spans that `tagger tag` finds in ner-uk's raw/<split> texts
against the gold `.jsonl` spans (exact start, end and label).

    python scripts/raw_score.py --model assets/uk_lstm.onnx --raw ../shared/data/ner-uk/raw/test

This measures the whole user path: sentence splitting, tokenisation, tagging, offsets.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tagger.annotate import TaggedSentence, annotate
from tagger.artifact import Artifact, load_artifact, shipped_model
from tagger.documents import file_document
from tagger.metrics import Score, prf
from tagger.predict import Tagger


def raw_score(artifact: Artifact, raw: Path) -> tuple[dict[str, Score], Score, int, float]:
    """Per-type and micro scores of the artifact's character spans on the texts of `raw`.

    Returns:
        (per-type scores, micro scores, words tagged, seconds spent tagging incl. tokenisation)
    """
    texts = sorted(raw.glob("*.txt"))
    if not texts:
        sys.exit(f"no .txt files in {raw}")
    gold: set[tuple[str, int, int, str]] = set()
    for path in texts:
        for line in path.with_suffix(".jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                e = json.loads(line)
                gold.add((str(path), e["start"], e["end"], e["label"]))
    pred: set[tuple[str, int, int, str]] = set()
    started = time.perf_counter()
    words = 0
    source = ""
    for event in annotate((file_document(p, "strict") for p in texts), Tagger(artifact), artifact.language):
        if isinstance(event, TaggedSentence):
            words += len(event.tokens)
            pred.update((source, e.start, e.end, e.label) for e in event.entities)
        else:
            source = event.source
    seconds = time.perf_counter() - started
    correct = gold & pred
    per_type = {
        label: prf(sum(e[3] == label for e in correct), sum(e[3] == label for e in pred), sum(e[3] == label for e in gold))
        for label in sorted({e[3] for e in gold | pred})
    }
    return per_type, prf(len(correct), len(pred), len(gold)), words, seconds


def main() -> None:
    """Print micro and per-type P/R/F1 over all documents of the folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="ONNX model [default: shipped uk model]")
    parser.add_argument("--raw", type=Path, default=Path(__file__).parents[1] / "../shared/data/ner-uk/raw/test")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    artifact = load_artifact(args.model or shipped_model("uk"), args.device)
    per_type, s, words, seconds = raw_score(artifact, args.raw)
    print(f"model {artifact.path.name}: {len(sorted(args.raw.glob('*.txt')))} documents of {args.raw}, {words} words"
          f" in {seconds:.2f} s ({words / seconds:,.0f} words/s incl. tokenisation)")
    for label, t in per_type.items():
        print(f"  {label:6s} P {t.precision:.4f}  R {t.recall:.4f}  F1 {t.f1:.4f}  support {t.support}")
    print(f"raw-text entity micro: P {s.precision:.4f}  R {s.recall:.4f}  F1 {s.f1:.4f}  (gold {s.support}, predicted {s.predicted})")


if __name__ == "__main__":
    main()
