"""How much of `tag`'s time is the graph, inside the process and replayed alone.

    python scripts/graph_share.py --data ../shared/data [--arch lstm] [--no-prefetch] [--rounds 3]

Tags ner-uk's raw validation and test texts (the benchmark's uk input) with a shipped uk choice
through the Python API (`tagger.load`, `pipe`), timing every `session.run` call as it happens, then
replays the recorded calls alone. Prints, per round: the whole `pipe`, the runs inside it, the rest
(Python), and the replay. The BiLSTM builds its next batch in a worker thread beside each run
(tagger/batching.py `prefetched`); `--no-prefetch` builds it in turn instead, to see what the
thread hides and what it costs the runs on a machine with few cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tagger  # noqa: E402
import tagger.predict  # noqa: E402
from benchmark import recorded_pipe, replayed  # noqa: E402  the benchmark's own recording of session.run


def one_round(arch: str | None, texts: list[str]) -> dict[str, float]:
    total, inside, calls = recorded_pipe(tagger.load("uk", arch=arch, device="cpu"), texts)
    return {"pipe": total, "runs inside": inside, "rest": total - inside, "runs replayed alone": replayed(calls)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="the shared data folder (holds ner-uk/raw)")
    parser.add_argument("--arch", default="lstm", help="a shipped uk choice [default: lstm]")
    parser.add_argument("--no-prefetch", action="store_true", help="build each batch's inputs in turn, not in a thread")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    raw = args.data / "ner-uk" / "raw"
    texts = [p.read_text(encoding="utf-8") for split in ("validation", "test") for p in sorted((raw / split).glob("*.txt"))]
    if args.no_prefetch:
        tagger.predict.prefetched = lambda fn, items: map(fn, items)  # type: ignore[assignment]
    for r in range(args.rounds):
        row = one_round(args.arch, texts)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.3f} s" for k, v in row.items()))


if __name__ == "__main__":
    main()
