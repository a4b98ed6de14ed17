"""`tagger evaluate` of shipped models natively and on an emulated AVX2-only CPU, over the first N test sentences.

    python scripts/emulated_eval.py --data ../shared/data --sentences 40 [MODEL.onnx ...]

The emulated CPU is qemu-user's Haswell (AVX2 + FMA, no AVX-512, no VNNI; `apt-get install
qemu-user`), on which ONNX Runtime takes its AVX2 kernels (`scripts/avx2_probe.py` prints the
saturated 1,048,544 there). The emulator runs the graphs ~1000x slower, so it scores a sample of
each model's test split (the first N sentences, written to a temporary folder, never into the repo)
and prints, per model, the scores both ways and whether the reports are identical. `--sentences 0`
scores the whole split (27 minutes for uk_lstm; hours for a BERT).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# QEMU 7.2's Haswell: AVX2, FMA, no AVX-512, no VNNI; the dropped features are ones qemu-user cannot
# emulate and would warn about on every start. tests/test_emulated_cpu.py runs its commands this way too.
HASWELL = "Haswell-v4,-pcid,-x2apic,-tsc-deadline,-invpcid,-spec-ctrl"


def emulated_command(command: list[str], qemu: str = "qemu-x86_64") -> list[str]:
    """`command` as run on the emulated AVX2-only CPU."""
    return [qemu, "-cpu", HASWELL, *command]


def sample(data: Path, corpus: str, sentences: int, folder: Path) -> Path:
    """A corpus folder whose test split is the first `sentences` of `data/corpus`'s (0: all of it)."""
    source = data / corpus
    blocks = [b for b in (source / "test.conll").read_text(encoding="utf-8").split("\n\n") if b.strip()]
    out = folder / corpus
    out.mkdir(parents=True)
    (out / "test.conll").write_text("\n\n".join(blocks[:sentences] if sentences else blocks) + "\n", encoding="utf-8")
    if (source / "labels.txt").is_file():
        (out / "labels.txt").write_text((source / "labels.txt").read_text(encoding="utf-8"), encoding="utf-8")
    return out


def evaluate(model: Path, folder: Path, on_emulator: bool) -> tuple[dict, float]:
    """(the JSON report, wall seconds) of `tagger evaluate --split test` of `model` on `folder`."""
    command = [sys.executable, "-m", "tagger", "evaluate", "--split", "test", "--model", str(model), "--data",
               str(folder), "--device", "cpu", "--json"]
    start = time.perf_counter()
    done = subprocess.run(emulated_command(command) if on_emulator else command, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise SystemExit(f"{model.name}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help="[default: every shipped model]")
    parser.add_argument("--data", type=Path, required=True, help="folder holding ner-uk/ and wnut17/")
    parser.add_argument("--sentences", type=int, default=40, help="first N test sentences (0: all)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tagger.artifact import load_artifact
    from tagger.corpus import known_corpus
    from tagger.shipped import shipped_files

    models = args.models or shipped_files()
    print("| model | sentences | native F1 | emulated AVX2 F1 | reports identical | emulated s |")
    print("|---|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            header = load_artifact(model, "cpu").header
            corpus = known_corpus(header["provenance"]["data"].get("corpus"), header["language"])
            folder = sample(args.data, corpus.folder, args.sentences, Path(tmp) / model.stem)
            native, _ = evaluate(model, folder, on_emulator=False)
            emulated, seconds = evaluate(model, folder, on_emulator=True)
            print(f"| {model.name} | {args.sentences or 'all'} | {native['micro']['f1']:.4f} |"
                  f" {emulated['micro']['f1']:.4f} | {'yes' if native == emulated else 'NO'} | {seconds:,.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
