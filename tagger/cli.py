"""The `tagger` command line: thin commands over plain functions; torch loads only for train/export."""

from __future__ import annotations

import errno
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tagger import __version__
from tagger.corpus import DATA_METAVAR, SPLITS
from tagger.errors import OutputError, TaggerError
from tagger.output import FORMATS
from tagger.runtime import DEVICES
from tagger.shipped import ARCH_CHOICES
from tagger.text import LANGS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tagger.annotate import Event
    from tagger.api import Pipeline

TRAIN_EXTRA = ("torch", "onnx", "datasets", "safetensors", "transformers")  # what train and export import
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
BROKEN_PIPE = 1  # the reader went away (`| head -1`): the exit code click and rich use for it
# OS errors of the environment (paths, permissions, full disks), shown as one line; others are bugs.
OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM,
             errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


class LazyGroup(click.Group):
    """A group whose heavy commands (torch) are imported only when invoked."""

    lazy = {"train": "tagger.train.cli:train", "export": "tagger.export.cli:export"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            # Checked before the command loads: torch is imported inside it, past any handler here.
            missing = next((m for m in TRAIN_EXTRA if importlib.util.find_spec(m) is None), None)
            try:
                if missing is None:
                    module, attr = self.lazy[name].split(":")
                    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
            except ImportError as err:
                missing = err.name
            raise click.ClickException(
                f"`tagger {name}` needs the training extra ({missing} is missing): pip install 'tagger[train]'"
            )
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run a command; Ctrl-C, a closed pipe and a full disk end it with one line, not a traceback."""
        try:
            return super().invoke(ctx)
        except OutputError as err:  # stdout failed: drop what it still buffers, say so once
            discard_stdout()
            raise click.ClickException(str(err)) from None
        except TaggerError as err:  # every library error: one line, exit 1
            raise click.ClickException(str(err)) from None
        except KeyboardInterrupt:
            command = " ".join(filter(None, ["tagger", ctx.invoked_subcommand]))
            click.echo(f"Interrupted: {command} stopped by Ctrl-C", err=True)
            ctx.exit(INTERRUPTED)
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly
            discard_stdout()
            ctx.exit(BROKEN_PIPE)
        except OSError as err:
            if err.errno not in OS_ERRORS:
                raise
            where = err.filename
            try:  # if stdout is what failed, drop what it still buffers
                sys.stdout.flush()
            except OSError:
                discard_stdout()
                where = where or "<stdout>"
            raise click.ClickException(
                f"{where + ': ' if where else ''}{err.strerror}; check the path, its permissions and the free space"
            ) from None


def console(**options: Any) -> Any:
    """A rich Console, imported on first use (rich costs start-up time a JSONL run never needs)."""
    from rich.console import Console

    return Console(**options)


def discard_stdout() -> None:
    """Point stdout at /dev/null, so bytes it can't write are not flushed (and reported) again at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file descriptor (click's CliRunner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="tagger")
def cli() -> None:
    """Named-entity tagging for Ukrainian and English (BiLSTM/BERT, ONNX Runtime)."""


def open_model(models: tuple[Path, ...], lang: str | None, arch: str | None, device: str,
               weights: str | None, threads: int | None = None) -> Pipeline:
    """`tagger.load` for --model (several: averaged) or the shipped default of --lang; say once what runs."""
    from tagger.api import load
    from tagger.ensemble import parse_weights
    from tagger.header import heads_of

    if models and arch:
        raise TaggerError(f"--arch {arch} picks a shipped model, --model a file of yours; drop one of them")
    nlp = load(None if models else lang, model=list(models) or None, arch=arch, device=device,
               weights=parse_weights(weights) if weights is not None else None, threads=threads)
    if lang and nlp.lang != lang:
        raise TaggerError(f"{nlp.name} is a {nlp.lang!r} model but --lang is {lang!r}; drop one of them")
    # a file of several seeds (`tagger export A B -o F`): "lstm×2"
    archs = "+".join(a.arch + (f"×{n}" if (n := len(heads_of(a.header))) > 1 else "") for a in nlp.artifacts)
    click.echo(f"tagger: {nlp.name} ({archs}, {nlp.lang}) on {', '.join(nlp.providers)}", err=True)
    return nlp


model_option = click.option("--model", "models", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
                            help="ONNX model file or a name `tagger models` lists; repeat it to average several"
                                 " [default: the default choice of --lang, as `tagger models` marks it]")
lang_option = click.option("--lang", type=click.Choice(LANGS), default=None,
                           help="language: picks the shipped models, tokenizer and corpus [default: uk, or the model's]")
weights_option = click.option("--weights", default=None, metavar="W1,W2,...",
                              help="weights of the averaged models, one per model [default: equal; a shipped average's own]")
arch_option = click.option("--arch", type=click.Choice(ARCH_CHOICES), default=None,
                           help="which shipped model of --lang; A+B averages them (bert+uk13: uk's BERT and the 13-type one,"
                                " read in 4 types) [default: the language's default choice]")
device_option = click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
                             help="auto: CUDA if it really runs, else CPU")


@cli.command()
@click.argument("files", nargs=-1)
@lang_option
@model_option
@arch_option
@weights_option
@device_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="output format; spacy: displaCy JSON lines; html: one self-contained page"
                   " [default: table on a terminal, else jsonl]")
@click.option("--lines", is_flag=True, help="every input line is its own document")
@click.option("--encoding-errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="invalid UTF-8: stop with an error, or read it as U+FFFD")
@click.option("--min-score", type=float, default=0.0, show_default=True,
              help="drop entities whose score (the model's probability of that span and label) is below this")
@click.option("--output", "output_dir", default=None, metavar="DIR",
              help="write one JSONL shard per input file (.txt, .jsonl, .parquet; folders and globs too) into DIR;"
                   " a rerun skips the shards that are complete")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="with --output: this process, or a Ray Data actor pool (pip install 'tagger[ray]')")
@click.option("--ray-address", default=None, help="Ray cluster to join [default: $RAY_ADDRESS, else a local one]")
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True, help="Ray actors")
@click.option("--num-cpus", type=click.FloatRange(min=0), default=1.0, show_default=True, help="CPUs per Ray actor")
@click.option("--num-gpus", type=click.FloatRange(min=0), default=0.0, show_default=True, help="GPUs per Ray actor")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="ONNX Runtime threads per model [default: one per core; with --engine ray: --num-cpus]")
def tag(files: tuple[str, ...], lang: str | None, models: tuple[Path, ...], arch: str | None, weights: str | None,
        device: str, fmt: str | None, lines: bool, encoding_errors: str, min_score: float, output_dir: str | None,
        engine: str, ray_address: str | None, concurrency: int, num_cpus: float, num_gpus: float,
        threads: int | None) -> None:
    """Tag FILES (one document each; .jsonl: one per line with a "text" field), or stdin."""
    from tagger.annotate import annotate
    from tagger.documents import documents
    from tagger.stream import above, progress, script_check

    if not 0.0 <= min_score <= 1.0:
        raise TaggerError(f"--min-score {min_score}: give a probability between 0 and 1")
    if output_dir is not None or engine != "local":
        return tag_to_folder(files, output_dir, engine, lang, models, arch, weights, device, encoding_errors,
                             threads, (ray_address, concurrency, num_cpus, num_gpus))
    inputs = documents([Path(f) for f in files], sys.stdin.buffer, lines, encoding_errors)  # checks the paths now
    nlp = open_model(models, lang, arch, device, weights, threads)
    if not files and sys.stdin.isatty():
        click.echo("tagger: reading stdin; Ctrl-D to end (or pass FILES)", err=True)
    events = script_check(annotate(inputs, nlp.model, nlp.lang), nlp.lang,
                          lambda line: click.echo(f"tagger: warning: {line}", err=True))
    events = above(events, min_score)
    if sys.stderr.isatty() and not sys.stdout.isatty():  # on a terminal the output itself shows progress
        events = progress(events, console(stderr=True))
    write(events, fmt or ("table" if sys.stdout.isatty() else "jsonl"), nlp.model.labels)


def tag_to_folder(files: tuple[str, ...], output_dir: str | None, engine: str, lang: str | None,
                  models: tuple[Path, ...], arch: str | None, weights: str | None, device: str, errors: str,
                  threads: int | None, ray: tuple[str | None, int, float, float]) -> None:
    """`tag --output DIR`: a JSONL shard per input file, by this process or by Ray; a summary on stderr."""
    from tagger.sharded import expand

    if output_dir is None:
        raise TaggerError("--engine ray writes shards: add --output DIR")
    if not files:
        raise TaggerError("--output DIR needs input files, folders or patterns (stdin is one stream: use > FILE)")
    inputs = expand(files)
    if engine == "local":
        from tagger.sharded import tag_to_folder as run

        nlp = open_model(models, lang, arch, device, weights, threads)
        summary = run(nlp, inputs, output_dir, errors)
    else:
        from tagger.ensemble import parse_weights
        from tagger.ray_engine import ModelSpec, RayOptions, tag_with_ray

        address, concurrency, num_cpus, num_gpus = ray
        spec = ModelSpec(lang, tuple(str(m) for m in models), arch, device,
                         tuple(parse_weights(weights)) if weights is not None else None)
        options = RayOptions(address, concurrency, num_cpus, num_gpus, threads or max(1, int(num_cpus)))
        summary = tag_with_ray(spec, inputs, output_dir, options, errors)
    click.echo(f"tagger: {summary.line()}", err=True)


def write(events: Iterable[Event], fmt: str, labels: list[str]) -> None:
    """The events to stdout in one of FORMATS."""
    from tagger.output import write_conll, write_jsonl, write_spacy, write_tables
    from tagger.scheme import entity_types

    if fmt == "jsonl":
        write_jsonl(events, sys.stdout)
    elif fmt == "conll":
        write_conll(events, sys.stdout)
    elif fmt == "spacy":
        write_spacy(events, sys.stdout)
    elif fmt == "html":
        from tagger.html import write_html  # here: the html module costs every other format's start

        write_html(events, sys.stdout, entity_types(labels))
    else:
        write_tables(events, console())


@cli.command()
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@lang_option
@model_option
@arch_option
@weights_option
@click.option("--data", default=None, metavar=DATA_METAVAR,
              help="a corpus folder (or one holding it), or the corpus's Hugging Face Hub name (e.g."
                   " Goader/ner-uk-2.0) [default: $TAGGER_DATA, else the model's corpus from the Hub]")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="score this token<TAB>tag file instead of running a model")
@click.option("--by-document", is_flag=True,
              help="read each document alone, as `tag` reads its inputs (needs the local folder's"
                   " documents.tsv) [default: the split as one text, as training reads it]")
@click.option("--documents", default="", metavar="PREFIX",
              help="score only the documents whose name (in the local folder's documents.tsv) starts with"
                   " PREFIX, e.g. bruk/ [default: all]")
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="write every false positive and false negative, with its sentence, as JSON lines to this file")
@device_option
def evaluate(split: str, lang: str | None, models: tuple[Path, ...], arch: str | None, weights: str | None, data: str | None,
             predictions: Path | None, by_document: bool, documents: str, as_json: bool, errors_path: Path | None,
             device: str) -> None:
    """Entity-level precision/recall/F1 (exact span and type) on a corpus split, and its errors by type of error."""
    from tagger.analysis import check_errors_path, write_errors
    from tagger.api import evaluate_gold, gold_split
    from tagger.corpus import corpus_for, load_split, local_folder, read_labels
    from tagger.evaluation import evaluate_predictions
    from tagger.output import writing
    from tagger.render import confusion_table, error_counts_table, scores_table, summary_table

    if errors_path is not None:
        check_errors_path(errors_path)  # before the model runs, not after
    if predictions is not None:
        if by_document or documents:
            raise TaggerError(f"{'--by-document' if by_document else '--documents'} changes what a model reads;"
                              " a --predictions file is scored on the whole split as it is: drop one of them")
        corpus_lang = lang or "uk"
        gold = load_split(corpus_lang, split, data)
        folder = local_folder(corpus_lang, data)
        labels = read_labels(folder, corpus_lang) if folder else list(corpus_for(corpus_lang, data).labels)
        report = evaluate_predictions(predictions, gold, labels)
        positions = list(range(len(gold)))
    else:
        nlp = open_model(models, lang, arch, device, weights)
        with console(stderr=True, quiet=not sys.stderr.isatty()).status(f"tagging the {split} split..."):
            # The sentences scored, read once (for the scores and the errors file): the model's own
            # corpus (ner-uk-2.0 for uk13), only the documents named.
            gold, names, positions = gold_split(nlp, split, data, documents, with_names=by_document)
            report = evaluate_gold(nlp, gold, names if by_document else None, documents)
    if errors_path is not None and report.analysis is not None:
        write_errors(errors_path, report.analysis, [s.words for s in gold], positions)
    with writing(sys.stdout):
        if as_json:
            click.echo(json.dumps(report.to_json(), indent=2))
        else:
            out = console()
            out.print(summary_table(report))
            out.print(scores_table(report, f"{split} split: entity-level scores (exact span and type)"))
            out.print(error_counts_table(report))
            out.print(confusion_table(report))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="print the list as JSON")
def models(as_json: bool) -> None:
    """The shipped models: each name --model, --lang and --arch reach, its labels, files and test F1."""
    from tagger.info import catalogue
    from tagger.output import writing
    from tagger.render import models_table

    entries = catalogue()
    with writing(sys.stdout):
        if as_json:
            click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        else:
            console().print(models_table(entries))


@cli.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="print the facts as JSON")
def info(model: str, as_json: bool) -> None:
    """What MODEL is (a .onnx file, a shipped name like uk_bert, or a language for its default):
    language, labels, training data and license, recorded scores, INT8 cost, where it can run."""
    from tagger.info import model_info
    from tagger.output import writing
    from tagger.render import info_table

    facts = model_info(model)
    with writing(sys.stdout):
        if as_json:
            click.echo(json.dumps(facts if len(facts) > 1 else facts[0], indent=2, ensure_ascii=False))
        else:
            for one in facts:
                console().print(info_table(one))


# Modules whose exit handlers must run: Ray stops the local cluster it started, multiprocessing
# reaps its workers, pyarrow finalises its filesystems (S3), training (torch) may have log files to
# flush. With any of them loaded, the process exits as usual.
NEEDS_TEARDOWN = ("ray", "multiprocessing", "pyarrow", "torch")


def main() -> None:
    """Console-script entry point. When a command returns its work is done (outputs renamed into
    place, threads joined), so the process ends without Python's teardown: freeing the sessions and
    every module took ~45 ms of a one-sentence `--arch lstm` run and ~90 ms of the default's."""
    try:
        cli(prog_name="tagger")
        code: Any = 0
    except SystemExit as done:
        code = done.code
    if any(name in sys.modules for name in NEEDS_TEARDOWN):
        sys.exit(code)
    exit_now(code)


def exit_now(code: Any) -> None:
    """End the process as `sys.exit(code)` would, after flushing what stdout and stderr still hold,
    but without running exit handlers or freeing memory."""
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): print it, status 1
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`)
        code = code or BROKEN_PIPE
    except (OSError, ValueError) as err:  # a full disk, a closed stream: never exit 0 with output lost
        discard_stdout()
        reason = getattr(err, "strerror", None) or err
        print(f"Error: <stdout>: cannot write the results ({reason}); free some space or write them elsewhere",
              file=sys.stderr)
        code = code or 1
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)
