"""Resident memory of `tagger tag` over a long stream on stdin: does it stay flat with input size?

    python scripts/memory_stream.py --data ../shared/data --arch lstm --mb 1024 --json runs/memory_lstm.json
    python scripts/memory_stream.py --data ../shared/data --minutes 30 --json runs/memory_default.json

Input: every ner-uk raw text (train, validation, test) over and over, sent to ONE `tagger tag --lang
uk --format jsonl` process as ONE document (what `cat big.txt | tagger tag` does). Repeated text
would only ever hit the tagger's word caches, so in each pass every --fresh-th word carries a
suffix naming the pass ("Києві" -> "Києвібв" in pass 12): new words keep arriving, and the caches
(bounded at `tagger.pieces.CACHE_WORDS` words) fill and start again; `--fills` prints where, and
only input sent after the first fill can show memory flat with input size.
The output is read and counted, not kept. Every --every seconds the script reads the tagger's
VmRSS and VmHWM (its peak so far) from /proc (Linux); it stops sending at --mb megabytes or after
--minutes, whichever comes first, waits for the tagger to finish, and prints one table: how
resident memory moved with the input sent. Not a unit test (it runs for minutes to an hour);
`tests/test_hostile.py` checks the same property on a tiny model in seconds, and
`tests/test_pieces.py` the word caches' bound.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.pieces import CACHE_WORDS  # noqa: E402
from tagger.runtime import machine  # noqa: E402
from tagger.text import tokenize  # noqa: E402

MB = 1_000_000
WORD = re.compile(r"[^\W\d_]{3,}")  # a run of letters: what gets a fresh ending
CHUNK = 256 * 1024  # bytes per write: the tagger reads what the pipe holds


def status_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a live process, in KiB ({} once it has exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            fields = dict(line.split(":", 1) for line in status if line.startswith(("VmRSS", "VmHWM")))
    except OSError:
        return {}
    return {key: int(value.split()[0]) for key, value in fields.items()}


def texts(data: Path) -> list[str]:
    """Every ner-uk raw text, in a fixed order."""
    raw = data / "ner-uk" / "raw"
    files = sorted(p for split in ("train", "validation", "test") for p in (raw / split).glob("*.txt"))
    if not files:
        raise SystemExit(f"no ner-uk raw texts under {raw}: pass --data the shared data folder")
    return [p.read_text(encoding="utf-8") for p in files]


def suffix(number: int) -> str:
    """`number` in Cyrillic letters (digit d -> the d-th letter of "абвгґдеєжз"): a word ending the
    tokeniser keeps inside the word, as it would not keep digits."""
    return "".join("абвгґдеєжз"[int(d)] for d in str(number))


def stream(corpus: list[str], fresh: int) -> Iterator[str]:
    """The texts pass after pass, without end, every `fresh`-th word of a pass ending in its number."""
    for number in itertools.count(1):
        seen = itertools.count()
        end = suffix(number)
        for text in corpus:
            yield WORD.sub(lambda m: m[0] + end if next(seen) % fresh == 0 else m[0], text) + "\n\n"


def cache_fills(corpus: list[str], fresh: int, mb: float, limit: int = CACHE_WORDS) -> list[float]:
    """MB sent when a `limit`-word cache of the stream's tokens fills and starts again, up to `mb`:
    where resident memory may still grow (counted text by text, as `tag` tokenises; not run)."""
    cached: set[str] = set()
    sent, fills = 0, list[float]()
    for block in stream(corpus, fresh):
        sent += len(block.encode("utf-8"))
        if sent > mb * MB:
            return fills
        words = {token.text for token in tokenize(block, "uk")}
        if len(cached | words) > limit:
            fills.append(sent / MB)
            cached = set()
        cached |= words
    return fills  # not reached: the stream has no end


class Feeder:
    """Sends the texts pass after pass, every `fresh`-th word of a pass made new, until a byte or time limit."""

    def __init__(self, corpus: list[str], limit_bytes: int, deadline: float, fresh: int) -> None:
        self.corpus, self.limit_bytes, self.deadline, self.fresh = corpus, limit_bytes, deadline, fresh
        self.sent = 0
        self.words = 0

    def run(self, stdin) -> None:  # noqa: ANN001 - a binary pipe
        buffer: list[bytes] = []
        size = 0
        for block in stream(self.corpus, self.fresh):
            buffer.append(block.encode("utf-8"))
            size += len(buffer[-1])
            self.words += len(block.split())
            if size >= CHUNK:
                try:
                    stdin.write(b"".join(buffer))
                except BrokenPipeError:  # the tagger stopped: `measure` reports how
                    return
                self.sent += size
                buffer, size = [], 0
                if self.sent >= self.limit_bytes or time.monotonic() >= self.deadline:
                    stdin.close()
                    return


def model_line(stderr: str) -> str:
    """The line where `tagger tag` names its model (a first run's license notice comes before it)."""
    named = [line for line in stderr.splitlines() if re.match(r"tagger: \S+ \([^()]*\) on ", line)]
    return named[-1] if named else ""


def measure(corpus: list[str], arch: str | None, mb: float, minutes: float, fresh: int,
            every: float) -> dict[str, Any]:
    """Stream the corpus through one tagger process; the record `report` prints."""
    command = [sys.executable, "-m", "tagger", "tag", "--lang", "uk", "--format", "jsonl"]
    if arch:
        command += ["--arch", arch]
    start = time.monotonic()
    feeder = Feeder(corpus, int(mb * MB), start + minutes * 60, fresh)
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    received = [0]
    errors: list[bytes] = []

    def drain() -> None:
        assert process.stdout is not None
        while chunk := process.stdout.read(CHUNK):
            received[0] += len(chunk)

    def drain_errors() -> None:
        assert process.stderr is not None
        errors.append(process.stderr.read())

    threads = [threading.Thread(target=target, args=args) for target, args in
               ((feeder.run, (process.stdin,)), (drain, ()), (drain_errors, ()))]
    for thread in threads:
        thread.start()
    readings: list[dict[str, float]] = []
    while True:
        # wait4 rather than poll: at exit it gives the peak the last reading may have missed
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            break
        kib = status_kib(process.pid)
        if kib:
            readings.append({"seconds": round(time.monotonic() - start, 1), "mb_sent": feeder.sent / MB,
                             "rss_mb": kib["VmRSS"] / 1024, "peak_mb": kib["VmHWM"] / 1024})
            print(f"{readings[-1]['seconds']:8.0f} s {feeder.sent / MB:9.1f} MB sent {kib['VmRSS'] / 1024:7.0f} MB"
                  f" resident, peak {kib['VmHWM'] / 1024:7.0f} MB", file=sys.stderr, flush=True)
        time.sleep(min(every, 1.0) if len(readings) < 10 else every)
    for thread in threads:
        thread.join()
    stderr = b"".join(errors).decode("utf-8", "replace").strip()
    if process.returncode:
        raise SystemExit(f"tagger failed ({process.returncode}): {stderr.splitlines()[-1:]}")
    return {"machine": machine(), "command": command[2:], "model": model_line(stderr),
            "fresh": fresh, "seconds": time.monotonic() - start, "mb_sent": feeder.sent / MB,
            "words_sent": feeder.words, "mb_out": received[0] / MB,
            "peak_mb": usage.ru_maxrss / 1024,  # the whole run's, from wait4 (KiB on Linux)
            "readings": readings}


def report(run: dict[str, Any]) -> None:
    """One table: resident memory and its peak as the input went through; the growth after half of it."""
    where, readings = run["machine"], run["readings"]
    print(f"machine: {where['cpu']} ({', '.join(where['flags'])}), {where['cores']} cores, onnxruntime"
          f" {where['onnxruntime']}; `{' '.join(run['command'])}` on stdin, one document, every"
          f" {run['fresh']}th word new each pass; {run['model']}")
    print(f"sent {run['mb_sent']:,.1f} MB ({run['words_sent']:,} words by whitespace) in {run['seconds']:,.0f} s"
          f" ({run['words_sent'] / run['seconds']:,.0f} words/s), received {run['mb_out']:,.1f} MB of JSON")
    print("| after | MB sent | resident MB | peak so far MB |")
    print("|---|---:|---:|---:|")
    n = len(readings)
    for r in (readings[k] for k in sorted({0, n // 10, n // 4, n // 2, 3 * n // 4, n - 1})):
        print(f"| {r['seconds']:,.0f} s | {r['mb_sent']:,.1f} | {r['rss_mb']:,.0f} | {r['peak_mb']:,.0f} |")
    # Growth after half the input is growth with input size only if the word caches were full by then
    # (`--fills` says where they fill for a given --fresh).
    half = next(r for r in readings if r["mb_sent"] >= run["mb_sent"] / 2)
    print(f"peak {run['peak_mb']:,.0f} MB; from half-way ({half['mb_sent']:,.1f} MB sent, peak then"
          f" {half['peak_mb']:,.0f} MB) to the end it grew {run['peak_mb'] - half['peak_mb']:,.1f} MB"
          f" over {run['mb_sent'] - half['mb_sent']:,.1f} MB more input")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="the shared data folder (holds ner-uk/raw)")
    parser.add_argument("--arch", default=None, help="tagger's --arch (default: the uk default choice)")
    parser.add_argument("--mb", type=float, default=1024, help="stop sending after this many MB (10^6 bytes)")
    parser.add_argument("--minutes", type=float, default=60, help="or after this many minutes")
    parser.add_argument("--fresh", type=int, default=10, help="every N-th word of a pass gets the pass's ending")
    parser.add_argument("--every", type=float, default=30, help="seconds between memory readings")
    parser.add_argument("--json", type=Path, help="also write the record here")
    parser.add_argument("--report", type=Path, help="print the table of a --json record again; run nothing")
    parser.add_argument("--fills", action="store_true",
                        help="print where the word cache fills and starts again within --mb for --fresh; run nothing")
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.report.read_text(encoding="utf-8")))
        return
    if args.data is None:
        parser.error("--data is required to run")
    if args.fills:
        fills = cache_fills(texts(args.data), args.fresh, args.mb)
        where = f"at {', '.join(f'{mb:.1f}' for mb in fills)} MB" if fills else "nowhere"
        print(f"--fresh {args.fresh}: a {CACHE_WORDS:,}-word cache fills {where} in the first {args.mb:g} MB")
        return
    run = measure(texts(args.data), args.arch, args.mb, args.minutes, args.fresh, args.every)
    if args.json:
        args.json.write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    report(run)


if __name__ == "__main__":
    main()
