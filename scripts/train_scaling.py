"""Seconds per training epoch of `tagger train` in one process and under torchrun, one run each.

    python scripts/train_scaling.py --data ../shared/data [--arch lstm|bert] [--sentences 2000]

Trains one epoch on the first --sentences ner-uk training sentences, in turn: one process with 1
and with 2 torch threads, and `torchrun --nproc-per-node 2` with 1 thread per process (gloo on the
CPU). Prints a Markdown table: the epoch's training seconds (its steps, as the epoch line says;
validation, on rank 0 alone, is timed apart) and the command's wall time, start-up included.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.runtime import machine  # noqa: E402

TAGGER = [sys.executable, "-m", "tagger"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "tagger"]
CONFIGS = {
    "1 process, 1 thread": (TAGGER, "1"),
    "1 process, 2 threads": (TAGGER, "2"),
    "torchrun, 2 processes x 1 thread": (TORCHRUN, "1"),
}
EPOCH = re.compile(r"epoch\s+1\s+loss\s+([\d.]+)\s+val F1 ([\d.]+).*?([\d.]+)s train")


def timed(launcher: list[str], threads: str, options: list[str]) -> tuple[float, float, str, str]:
    """(wall seconds, the epoch's training seconds, loss, validation F1) of one run."""
    env = {**os.environ, "OMP_NUM_THREADS": threads}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([*launcher, "train", *options, "--out", out], capture_output=True, text=True,
                              env=env, check=False)
        wall = time.perf_counter() - start
    found = EPOCH.search(done.stderr)
    if done.returncode or not found:
        raise SystemExit(f"failed: {done.stderr.strip().splitlines()[-3:]}")
    return wall, float(found.group(3)), found.group(1), found.group(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder holding ner-uk/")
    parser.add_argument("--arch", default="lstm", choices=("lstm", "bert"))
    parser.add_argument("--sentences", type=int, default=2000, help="training sentences (a prefix of train)")
    args = parser.parse_args()
    options = ["--arch", args.arch, "--lang", "uk", "--data", str(Path(args.data) / "ner-uk"), "--device", "cpu",
               "--epochs", "1", "--max-train-sentences", str(args.sentences)]
    print(f"{machine()}; uk --arch {args.arch}, one epoch of {args.sentences} training sentences\n")
    print("| configuration | wall s | training s | vs 1 thread | loss | val F1 |\n|---|---:|---:|---:|---:|---:|")
    base = None
    for name, (launcher, threads) in CONFIGS.items():
        wall, epoch, loss, f1 = timed(launcher, threads, options)
        base = base or epoch
        print(f"| {name} | {wall:.1f} | {epoch:.1f} | {base / epoch:.2f}x | {loss} | {f1} |", flush=True)


if __name__ == "__main__":
    main()
