"""Cold start of this checkout against another one (a `git worktree` of an earlier commit), alternating.

    git worktree add /tmp/base HEAD~1
    python scripts/cold_start.py /tmp/base [--runs 9] [--lang uk --arch lstm --arch default]

Each round runs one sentence on stdin through `tagger tag --format jsonl` as a fresh process, for
every --arch, first from the other checkout, then from this one, so the machine's drift (up to 40%
on these shared machines) falls on both alike. Prints each one's seconds, sorted, with the median
and the ratio of medians, and whether the two wrote the same output.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark import SENTENCE, TAGGER  # noqa: E402

HERE = Path(__file__).resolve().parents[1]


def one_start(checkout: Path, arch: str, lang: str, folder: str) -> tuple[float, bytes]:
    """(wall seconds, stdout) of one process of `checkout`'s tagger, run outside both checkouts so
    that PYTHONPATH alone says whose code loads."""
    options = [] if arch == "default" else ["--arch", arch]
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    done = subprocess.run([*TAGGER, "tag", "--lang", lang, *options, "--format", "jsonl"], input=SENTENCE[lang].encode(),
                          capture_output=True, cwd=folder, env=env, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", type=Path, help="the other checkout (its tagger/ and assets/ are used)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--lang", default="uk", choices=sorted(SENTENCE))
    parser.add_argument("--arch", action="append", help="'default' or an --arch choice (repeatable; default: lstm, default)")
    args = parser.parse_args()
    archs = args.arch or ["lstm", "default"]
    seconds: dict[tuple[str, str], list[float]] = {}
    outputs: dict[tuple[str, str], set[bytes]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            for arch in archs:
                for name, checkout in (("other", args.other.resolve()), ("this", HERE)):
                    took, out = one_start(checkout, arch, args.lang, folder)
                    seconds.setdefault((arch, name), []).append(took)
                    outputs.setdefault((arch, name), set()).add(out)
    for arch in archs:
        medians = {}
        for name in ("other", "this"):
            runs = sorted(seconds[arch, name])
            medians[name] = statistics.median(runs)
            print(f"{args.lang} {arch:8s} {name:5s} median {medians[name]:.3f} s  ({' '.join(f'{s:.3f}' for s in runs)})")
        same = outputs[arch, "other"] == outputs[arch, "this"] and len(outputs[arch, "this"]) == 1
        print(f"{args.lang} {arch:8s} other/this {medians['other'] / medians['this']:.2f}x; same output: {same}")


if __name__ == "__main__":
    main()
