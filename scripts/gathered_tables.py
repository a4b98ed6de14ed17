"""Rewrite exported BERT files so their word table stays INT8 in memory (export/portable.py `gathered_tables`).

    python scripts/gathered_tables.py assets/uk_bert.onnx assets/uk13_bert.onnx [--check]

`tagger export --quantize int8` writes this form since 2026-12-03; this script brings a file exported
before it there without its checkpoint. The rewrite is refused unless ONNX Runtime gives bit-identical
outputs before and after (every output, max |diff| 0) on windows of several shapes with padding, under
tagger's session options and under a plain session's (every optimisation), and unless a plain
session still makes no integer product of it; the header's quantisation method says what changed.
Each file is replaced atomically. `--check` verifies and times the session start, writing nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.atomic import atomic_path  # noqa: E402
from tagger.export.header import get_header, stamp  # noqa: E402
from tagger.export.portable import gathered_tables  # noqa: E402
from tagger.export.quantize import GATHERED, check_portable  # noqa: E402
from tagger.runtime import create_session  # noqa: E402

SHAPES = ((1, 1), (1, 7), (3, 40), (8, 256))  # (windows, pieces)


def session(path: Path, plain: bool) -> Any:
    """tagger's own CPU session of `path`, or (`plain`) one with ONNX Runtime's defaults, every pass."""
    if not plain:
        return create_session(path, device="cpu")
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def max_difference(before: Path, after: Path, vocabulary: int) -> float:
    """The largest |difference| of any output between the two files, over SHAPES, in both kinds of session."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for plain in (False, True):
        old, new = session(before, plain), session(after, plain)
        for windows, pieces in SHAPES:
            ids = rng.integers(0, vocabulary, size=(windows, pieces), dtype=np.int64)
            mask = np.ones((windows, pieces), np.int64)
            for row in range(1, windows):  # every window but the first padded
                mask[row, rng.integers(1, pieces + 1):] = 0
            feed = {"input_ids": ids, "attention_mask": mask}
            for x, y in zip(old.run(None, feed), new.run(None, feed), strict=True):
                worst = max(worst, float(np.abs(x - y).max()) if x.size else 0.0)
    return worst


# One session start in a new process, as a user's first call pays it (a second start in the same
# process reuses pages the first faulted in, and runs several times faster).
START = """
import sys, time
sys.path.insert(0, sys.argv[2])
from gathered_tables import session
start = time.perf_counter()
session(sys.argv[1], plain=False)
seconds = time.perf_counter() - start
rss = max(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(("VmHWM", "VmRSS")))
print(seconds, rss / 1024)
"""


def fresh_starts(paths: tuple[Path, Path], rounds: int = 5) -> list[tuple[float, float]]:
    """For each path: the median session start (s) and peak RSS (MB) over `rounds` new processes, alternating."""
    runs: list[list[tuple[float, float]]] = [[], []]
    for _ in range(rounds):
        for i, path in enumerate(paths):
            out = subprocess.run([sys.executable, "-c", START, str(path), str(Path(__file__).parent)],
                                 capture_output=True, text=True, check=True).stdout.split()
            runs[i].append((float(out[0]), float(out[1])))
    return [(statistics.median(s for s, _ in r), statistics.median(m for _, m in r)) for r in runs]


def rewrite(path: Path, check: bool) -> None:
    graph = onnx.load(str(path))
    header = get_header(graph, path)
    tables = gathered_tables(graph)
    if not tables:
        print(f"{path}: no whole widened word table; left as it is")
        return
    quantization = dict(header.get("quantization") or {})
    if GATHERED not in quantization.get("method", ""):
        quantization["method"] = f"{quantization.get('method', '')}; {GATHERED}".lstrip("; ")
    stamp(graph, {**header, "quantization": quantization})  # type: ignore[typeddict-item]
    check_portable(graph, path)
    with tempfile.TemporaryDirectory() as folder:
        candidate = Path(folder) / path.name
        onnx.save(graph, str(candidate))
        vocabulary = max(init.dims[0] for init in graph.graph.initializer if init.name in {f"{t}_int8" for t in tables})
        diff = max_difference(path, candidate, vocabulary)
        if diff != 0.0:
            raise SystemExit(f"{path}: refused: outputs differ by up to {diff:.3g} after gathering {tables}")
        (before, before_mb), (after, after_mb) = fresh_starts((path, candidate))
        print(f"{path}: {', '.join(tables)} gathered before widening; outputs bit-identical; session start"
              f" {before:.3f} -> {after:.3f} s, peak RSS {before_mb:.0f} -> {after_mb:.0f} MB (medians of 5 new processes)")
        if not check:
            with atomic_path(path) as tmp:
                tmp.write_bytes(candidate.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="verify and time only; write nothing")
    args = parser.parse_args()
    for path in args.files:
        rewrite(path, args.check)


if __name__ == "__main__":
    main()
