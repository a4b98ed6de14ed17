"""INT8 validation and test F1 of a float32 BERT graph, quantised without and with FFN smoothing.

    tagger export runs/bert_uk_crfdoc_s2/best_bert.pth -o /tmp/s2.onnx      # float32, no --quantize
    python scripts/smoothing.py /tmp/s2.onnx --data ../shared/data --alpha 0.5 0.7 0.85

"off" is `--quantize int8` before smoothing was added; each alpha is what it writes with that
alpha (0.85 is the default, picked on validation F1 this way). Quantised files go to a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tagger.export.header import set_header
from tagger.export.quantize import calibration_sentences, write_quantized
from tagger.artifact import load_artifact
from tagger.corpus import load_split
from tagger.evaluation import evaluate
from tagger.predict import Tagger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a float32 BERT .onnx (tagger export without --quantize)")
    parser.add_argument("--data", help="corpus folder (default: the Hub)")
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.85])
    args = parser.parse_args()
    header = load_artifact(args.model, device="cpu").header
    if header["arch"] != "bert" or "quantization" in header:
        raise SystemExit(f"{args.model}: not a float32 BERT graph; export one without --quantize")
    lang = header["language"]
    splits = {split: load_split(lang, split, args.data) for split in ("validation", "test")}
    calibration = calibration_sentences(splits["validation"])  # read once, for scoring and calibration

    def scores(path: Path) -> str:
        tagger = Tagger(load_artifact(path, device="cpu"))
        return "  ".join(f"{split} F1 {evaluate(tagger, gold).micro.f1:.4f}" for split, gold in splits.items())

    print(f"float32       {scores(args.model)}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for alpha in [None, *args.alpha]:
            out = Path(folder) / f"int8-{alpha}.onnx"
            write_quantized(args.model, out, "int8", header, calibration if alpha is not None else (),
                            alpha if alpha is not None else 0.0)
            set_header(out, header)
            name = "int8 off" if alpha is None else f"int8 α {alpha}"
            print(f"{name:<13} {scores(out)}", flush=True)


if __name__ == "__main__":
    main()
