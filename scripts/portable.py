"""INT8 formats side by side, and the shipped files rewritten into the portable one.

    python scripts/portable.py --data ../shared/data --compare assets/*.onnx   # measure, write nothing
    python scripts/portable.py --data ../shared/data --write assets/*.onnx     # rewrite in place

For each INT8 file made by ONNX Runtime's dynamic quantiser (`MatMulInteger`, `DynamicQuantizeLSTM`),
`--compare` scores three forms of the same INT8 weights on the test split, in one run:
- `u8s8`: the file as it is (U8 activations quantised per call x S8 weights: saturates without VNNI);
- `reduce-range`: the weights requantised to 7 bits ([-64, 63]: cannot saturate), activations as above;
- `float`: the INT8 weights widened to float32 at load, float activations (export/portable.py).
and prints test F1, words/s of tagging the split (ratios to `u8s8` are what to quote: timings on
these machines vary by up to 40% between runs), how many test words change tag when the split is
tagged in small batches instead of large ones (batch mates: 0 means none), and the saturation risks.

`--write` rewrites a file into the `float` form (the same INT8 weights, so the same file a fresh
`tagger export --quantize` would write from the checkpoint, minus SmoothQuant, which is baked into
the shipped uk_bert's weights), re-measures its test F1 and stores it in the header with the CPU
and ONNX Runtime version it was measured on. The file is replaced atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tagger.predict as predict_module  # noqa: E402
import tagger.subwords as subwords_module  # noqa: E402
from tagger.export.header import get_header, set_header  # noqa: E402
from tagger.export.portable import PORTABLE_S8, float_compute, saturation_risks  # noqa: E402
from tagger.export.quantize import MODES  # noqa: E402
from tagger.artifact import load_artifact  # noqa: E402
from tagger.atomic import atomic_path  # noqa: E402
from tagger.conll import Sentence  # noqa: E402
from tagger.corpus import load_split  # noqa: E402
from tagger.evaluation import evaluate  # noqa: E402
from tagger.header import Header, Quantization  # noqa: E402
from tagger.predict import Tagger  # noqa: E402
from tagger.runtime import machine  # noqa: E402

SMALL = {"BATCH_PIECES": 2048, "MAX_BATCH": 8, "MAX_WINDOWS": 8, "BATCH_WORDS": 128, "DECODE_WORDS": 128}  # "small batches" for the batch-mate check


def reduce_range(model: Any) -> None:
    """Requantise every S8 weight of an integer product to 7 bits, per output channel, in place."""
    inits = {init.name: init for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "MatMulInteger":
            pairs = [(node.input[1], scale_of(model, node))]
        elif node.op_type == "DynamicQuantizeLSTM":
            pairs = [(node.input[1], node.input[8]), (node.input[2], node.input[10])]
        else:
            continue
        for weight, scale in pairs:
            q, s = numpy_helper.to_array(inits[weight]), numpy_helper.to_array(inits[scale])
            w = q.astype(np.float32) * s[..., None, :] if q.ndim == 3 else q.astype(np.float32) * s
            s7 = np.maximum(np.abs(w).max(axis=-2), 1e-12) / PORTABLE_S8[1]
            q7 = np.clip(np.round(w / (s7[..., None, :] if q.ndim == 3 else s7)), *PORTABLE_S8).astype(np.int8)
            inits[weight].CopyFrom(numpy_helper.from_array(q7, weight))
            inits[scale].CopyFrom(numpy_helper.from_array(s7.astype(np.float32).reshape(s.shape), scale))


def scale_of(model: Any, node: Any) -> str:
    """The weight-scale initializer of a MatMulInteger written by quantize_dynamic."""
    cast = next(n for n in model.graph.node if node.output[0] in n.input)
    rescale = next(n for n in model.graph.node if cast.output[0] in n.input)
    scales = next(n for n in model.graph.node if rescale.input[1] in n.output)
    return str(scales.input[1])


@contextmanager
def batches(limits: dict[str, int]) -> Iterator[None]:
    """Temporarily cap the tagging batches (both the BiLSTM's and the encoder's)."""
    modules = (predict_module, subwords_module)
    saved = {(m, k): getattr(m, k) for m in modules for k in limits if hasattr(m, k)}
    for (m, k) in saved:
        setattr(m, k, limits[k])
    try:
        yield
    finally:
        for (m, k), v in saved.items():
            setattr(m, k, v)


def measure(path: Path, gold: list[Sentence]) -> dict[str, Any]:
    """Test F1, words/s and batch-mate changes of one graph file."""
    tagger = Tagger(load_artifact(path, "cpu"))
    words = [s.words for s in gold]
    tagger.tag(words[:32])  # warm-up
    start = time.perf_counter()
    tags = tagger.tag(words)
    seconds = time.perf_counter() - start
    with batches(SMALL):
        small = tagger.tag(words)
    changed = sum(a != b for x, y in zip(tags, small) for a, b in zip(x, y))
    report = evaluate(tagger, gold)
    return {"test_f1": round(report.micro.f1, 4), "words_per_s": round(sum(map(len, words)) / seconds),
            "tags_changed_by_batching": changed,
            "saturation_risks": len(saturation_risks(onnx.load(str(path))))}


def compare(path: Path, gold: list[Sentence]) -> list[dict[str, Any]]:
    """The three forms of one file's INT8 weights, measured in one run."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for form in ("u8s8", "reduce-range", "float"):
            model = onnx.load(str(path))
            if form == "reduce-range":
                reduce_range(model)
            elif form == "float":
                float_compute(model)
            out = Path(folder) / f"{form}.onnx"
            onnx.save(model, str(out))
            rows.append({"model": path.name, "form": form, **measure(out, gold)})
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def write(path: Path, gold: list[Sentence]) -> dict[str, Any]:
    """Rewrite `path` into the float form in place; its header gets the re-measured test F1."""
    model = onnx.load(str(path))
    header: Header = get_header(model, path)
    before: Quantization = header.get("quantization") or {}
    if not float_compute(model):
        raise SystemExit(f"{path}: no integer products to rewrite (already portable?)")
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
        f1 = round(evaluate(Tagger(load_artifact(tmp, "cpu")), gold).micro.f1, 4)
        mode = before.get("mode", "int8")
        method = MODES[mode][1]
        if "smoothed" in before.get("method", ""):
            method += "; FFN output projections smoothed before quantisation (SmoothQuant, alpha 0.85)"
        info: Quantization = {
            **before, "mode": mode, "method": method, "test_f1_int8": f1, "test_sentences": len(gold),
            "measured_on": machine(),
            "rewritten_from": {"method": before.get("method"), "test_f1_int8": before.get("test_f1_int8")},
        }
        set_header(tmp, {**header, "quantization": info})
    return {"model": path.name, "test_f1_fp32": before.get("test_f1_fp32"),
            "before": before.get("test_f1_int8"), "after": f1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", required=True, help="folder holding ner-uk/ and wnut17/")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--compare", action="store_true", help="measure the three forms, write nothing")
    what.add_argument("--write", action="store_true", help="rewrite each file into the float form")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    print(f"machine: {json.dumps(machine())}")
    rows: list[dict[str, Any]] = []
    for path in args.models:
        gold = load_split(load_artifact(path, "cpu").language, "test", args.data)
        rows += compare(path, gold) if args.compare else [write(path, gold)]
    if args.compare:
        print("| model | INT8 form | test F1 | words/s | vs u8s8 | test tags changed by batching | saturation risks |")
        print("|---|---|---:|---:|---:|---:|---:|")
        base = {r["model"]: r["words_per_s"] for r in rows if r["form"] == "u8s8"}
        for r in rows:
            print(f"| `{r['model']}` | {r['form']} | {r['test_f1']:.4f} | {r['words_per_s']:,} |"
                  f" {r['words_per_s'] / base[r['model']]:.2f}x | {r['tags_changed_by_batching']} | {r['saturation_risks']} |")
    else:
        for r in rows:
            print(f"{r['model']}: test F1 {r['before']} (u8s8, as shipped) -> {r['after']} (float compute);"
                  f" float32 checkpoint {r['test_f1_fp32']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
