"""Words/s of `tagger tag --output DIR` on the local engine and on Ray with 1 and 2 actors, one run.

    python scripts/scaling.py --data ../shared/data [--arch lstm|bert|bert+lstm]

Input: every ner-uk raw text (train, validation, test: 228 files, ~216k words), read from the
shared data folder, tagged into a fresh temporary folder by each configuration in turn:
the local engine (ONNX Runtime's default threads), Ray with 1 actor (2 CPUs, 2 threads) and Ray
with 2 actors (1 CPU, 1 thread each), each on a local Ray cluster it starts. Wall time includes
start-up; Ray's start-up alone is measured on one small file. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.runtime import machine  # noqa: E402

TAGGER = [sys.executable, "-c", "import sys; from tagger.cli import main; sys.argv[0] = 'tagger'; main()"]
CONFIGS = {
    "local engine": [],
    "Ray, 1 actor x 2 CPUs, 2 threads": ["--engine", "ray", "--concurrency", "1", "--num-cpus", "2", "--threads", "2"],
    "Ray, 2 actors x 1 CPU, 1 thread": ["--engine", "ray", "--concurrency", "2", "--num-cpus", "1", "--threads", "1"],
}


def timed(args: list[str]) -> tuple[float, str]:
    """(wall seconds, the summary line) of one `tagger tag --output` run."""
    start = time.perf_counter()
    done = subprocess.run([*TAGGER, "tag", *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stderr.splitlines() if line.startswith("tagger:")]
    if done.returncode:
        raise SystemExit(f"failed: {done.stderr.strip().splitlines()[-1:]}")
    return seconds, lines[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--arch", default="lstm")
    args = parser.parse_args()
    raw = args.data / "ner-uk" / "raw"
    files = sorted(str(p) for split in ("train", "validation", "test") for p in (raw / split).glob("*.txt"))
    model = ["--lang", "uk", "--arch", args.arch]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        startup, _ = timed([*model, files[0], "--output", f"{folder}/startup", *CONFIGS["Ray, 2 actors x 1 CPU, 1 thread"]])
        local_one, _ = timed([*model, files[0], "--output", f"{folder}/startup-local"])
        for name, options in CONFIGS.items():
            seconds, summary = timed([*model, *files, "--output", f"{folder}/{len(rows)}", *options])
            words = int(summary.split(" documents, ")[1].split(" words")[0].replace(",", ""))
            rows.append((name, seconds, words))
            print(f"{name}: {seconds:.1f} s; {summary}", file=sys.stderr)
    where = machine()
    print(f"machine: {where['cpu']} ({', '.join(where['flags'])}), {where['cores']} cores,"
          f" onnxruntime {where['onnxruntime']}; uk --arch {args.arch}, {len(files)} files")
    print("| engine | wall s | words/s | vs local |")
    print("|---|---:|---:|---:|")
    for name, seconds, words in rows:
        print(f"| {name} | {seconds:.1f} | {words / seconds:,.0f} | {rows[0][1] / seconds:.2f}x |")
    print(f"Ray start-up: one small file takes {startup:.1f} s on Ray (2 actors) against {local_one:.1f} s locally.")


if __name__ == "__main__":
    main()
