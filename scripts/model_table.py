"""The README's model table: test scores, raw-text score and CPU speed of ONNX models, with mean ± std.

    python scripts/model_table.py --lang uk --data ../shared/data runs/bert_uk_s*/best_bert.onnx
    python scripts/model_table.py --lang uk --data ../shared/data assets/uk_lstm.onnx
    python scripts/model_table.py --lang uk --data ../shared/data --weights 0.6,0.4 assets/uk_bert.onnx+assets/uk_lstm.onnx

One row per model file (`a.onnx+b.onnx`: the two averaged, as `tagger --model a.onnx --model b.onnx`;
`--weights 0.6,0.4` as `tagger --weights`),
then (for several, e.g. one per seed) a mean ± sample-std row.
"(float32)": the test F1 of the graph before INT8 quantisation, as `tagger export --quantize` measured it
(not known for an average of several).
Words/s: `.tag` of the model (or of the average) over the test split's sentences (already tokenised) on the CPU, with
ONNX Runtime's default threads, after a warm-up call; best of 3 timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from raw_score import raw_score  # noqa: E402

from tagger.api import Pipeline  # noqa: E402
from tagger.corpus import load_split  # noqa: E402
from tagger.ensemble import load_tagger, parse_weights  # noqa: E402
from tagger.errors import TaggerError  # noqa: E402
from tagger.evaluation import evaluate  # noqa: E402
from tagger.predict import SentenceTagger  # noqa: E402

RAW = {"uk": Path(__file__).resolve().parents[1] / "../shared/data/ner-uk/raw/test"}


def measure(spec: str, lang: str, data: str | None, raw: Path | None, speed: bool = True,
            weights: list[float] | None = None) -> dict[str, object]:
    """Scores and speed of one model file, or of several joined by '+' (averaged with `weights`)."""
    paths = [Path(p) for p in spec.split("+")]
    tagger = load_tagger(paths, "cpu", weights if len(paths) > 1 else None)
    artifacts = tagger.artifacts
    gold = load_split(lang, "test", data)
    report = evaluate(tagger, gold, model=tagger.name)
    words = [s.words for s in gold]
    seconds = float("nan")
    if speed:
        tagger.tag(words[:64])  # warm-up: sessions allocate on their first runs
        seconds = min(timed(tagger, words) for _ in range(3))
    row: dict[str, object] = {
        "model": spec, "mb": sum(p.stat().st_size for p in paths) / 1e6,
        "p": report.micro.precision, "r": report.micro.recall, "f1": report.micro.f1, "macro": report.macro_f1,
        "types": {t: s.f1 for t, s in report.per_type.items()}, "wps": sum(map(len, words)) / seconds,
        "quantized": all("quantization" in a.header for a in artifacts),
        "fp32": artifacts[0].header.get("quantization", {}).get("test_f1_fp32", report.micro.f1) if len(paths) == 1 else None,
    }
    if raw is not None and raw.is_dir():
        _, micro, _, _ = raw_score(Pipeline(tagger), raw)
        row["raw"] = micro.f1
    return row


def timed(tagger: SentenceTagger, words: list[list[str]]) -> float:
    """Seconds to tag all sentences once."""
    started = time.perf_counter()
    tagger.tag(words)
    return time.perf_counter() - started


def mean_std(values: list[float], digits: int = 4) -> str:
    """'m ± s' (sample std), or the value alone."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    """Measure every model and print markdown rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="ONNX files; a+b.onnx: two averaged")
    parser.add_argument("--lang", required=True, choices=["uk", "en"])
    parser.add_argument("--data", default=None, help="corpus folder (or a folder holding ner-uk/ and wnut17/)")
    parser.add_argument("--raw", type=Path, default=None, help="raw texts with .jsonl spans [default: ner-uk raw/test for uk]")
    parser.add_argument("--weights", default=None,
                        help="weights of the models of each a+b row, comma-separated [default: equal]")
    parser.add_argument("--no-speed", action="store_true", help="skip the timing (on a busy machine it means nothing)")
    args = parser.parse_args()
    raw = args.raw or RAW.get(args.lang)
    try:
        weights = parse_weights(args.weights) if args.weights is not None else None
        rows = [measure(p, args.lang, args.data, raw, not args.no_speed, weights) for p in args.models]
    except TaggerError as err:
        sys.exit(f"error: {err}")
    types = sorted({t for r in rows for t in r["types"]})  # type: ignore[attr-defined]
    print("| model | size MB | test P | test R | test micro F1 | (float32) | macro F1 | " + " | ".join(types)
          + " | raw-text F1 | words/s (CPU) |")
    print("|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(types) + "---:|---:|")

    def line(name: str, rs: list[dict[str, object]]) -> str:
        cells = [mean_std([float(r[k]) for r in rs]) if all(r[k] is not None for r in rs) else "–"  # type: ignore[arg-type]
                 for k in ("p", "r", "f1", "fp32", "macro")]
        cells += [mean_std([float(r["types"].get(t, 0.0)) for r in rs], 3) for t in types]  # type: ignore[attr-defined]
        cells.append(mean_std([float(r["raw"]) for r in rs]) if all("raw" in r for r in rs) else "–")  # type: ignore[arg-type]
        cells.append("–" if args.no_speed else mean_std([float(r["wps"]) for r in rs], 0))  # type: ignore[arg-type]
        size = mean_std([float(r["mb"]) for r in rs], 1)  # type: ignore[arg-type]
        return f"| {name} | {size} | " + " | ".join(cells) + " |"

    for r in rows:
        print(line(f"`{r['model']}`" + (" (int8)" if r["quantized"] else ""), [r]))
    if len(rows) > 1:
        print(line(f"**mean ± std over {len(rows)}**", rows))


if __name__ == "__main__":
    main()
