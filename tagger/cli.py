"""The `tagger` command line: thin commands over plain functions; torch loads only for train/export."""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from tagger import __version__
from tagger.errors import OutputError, TaggerError
from tagger.shipped import ARCHS

if TYPE_CHECKING:
    from tagger.predict import SentenceTagger

LANGS = ("uk", "en")
SPLITS = ("train", "validation", "test")
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
BROKEN_PIPE = 1  # the reader went away (`| head -1`): the exit code click and rich use for it
# OS errors of the environment (paths, permissions, full disks), shown as one line; others are bugs.
OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM,
             errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG}


class LazyGroup(click.Group):
    """A group whose heavy commands (torch) are imported only when invoked."""

    lazy = {"train": "train.cli:train", "export": "export.cli:export"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            try:
                return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
            except ImportError as err:
                raise click.ClickException(
                    f"`tagger {name}` needs the training extra ({err.name} is missing):"
                    " pip install 'tagger[train]'"
                ) from None
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run a command; Ctrl-C, a closed pipe and a full disk end it with one line, not a traceback."""
        try:
            return super().invoke(ctx)
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
               weights: str | None) -> SentenceTagger:
    """A tagger for --model (several: averaged), or the shipped default of --lang; say once what runs."""
    from tagger.ensemble import load_tagger, parse_weights
    from tagger.runtime import active_provider
    from tagger.shipped import shipped_models

    if models and arch:
        raise TaggerError(f"--arch {arch} picks a shipped model, --model a file of yours; drop one of them")
    paths, shipped_weights = (list(models), None) if models else shipped_models(lang or "uk", arch)
    tagger = load_tagger(paths, device, parse_weights(weights) if weights is not None else shipped_weights)
    if lang and tagger.language != lang:
        raise TaggerError(f"{tagger.name} is a {tagger.language!r} model but --lang is {lang!r}; drop one of them")
    kinds = "+".join(a.kind for a in tagger.artifacts)
    providers = sorted({active_provider(a.session) for a in tagger.artifacts})
    click.echo(f"tagger: {tagger.name} ({kinds}, {tagger.language}) on {', '.join(providers)}", err=True)
    return tagger


model_option = click.option("--model", "models", type=click.Path(dir_okay=False, path_type=Path), multiple=True,
                            help="ONNX model file; repeat it to average several [default: the best shipped choice of --lang]")
lang_option = click.option("--lang", type=click.Choice(LANGS), default=None,
                           help="language: picks the shipped models, tokenizer and corpus [default: uk, or the model's]")
weights_option = click.option("--weights", default=None, metavar="W1,W2,...",
                              help="weights of the averaged models, one per model [default: equal; shipped: 0.6,0.4]")
arch_option = click.option("--arch", type=click.Choice(ARCHS), default=None,
                           help="which shipped model of --lang; bert+lstm averages both [default: the best shipped choice]")
device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                             help="auto: CUDA if it really runs, else CPU")


@cli.command()
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@lang_option
@model_option
@arch_option
@weights_option
@device_option
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl", "conll"]), default=None,
              help="output format [default: table on a terminal, else jsonl]")
@click.option("--lines", is_flag=True, help="every input line is its own document")
@click.option("--encoding-errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="invalid UTF-8: stop with an error, or read it as U+FFFD")
def tag(files: tuple[Path, ...], lang: str | None, models: tuple[Path, ...], arch: str | None, weights: str | None,
        device: str, fmt: str | None, lines: bool, encoding_errors: str) -> None:
    """Tag FILES (one document each; .jsonl: one per line with a "text" field), or stdin."""
    from tagger.annotate import annotate
    from tagger.documents import documents
    from tagger.output import write_conll, write_jsonl, write_tables

    try:
        inputs = documents(list(files), sys.stdin.buffer, lines, encoding_errors)  # checks the paths now
        tagger = open_model(models, lang, arch, device, weights)
        events = annotate(inputs, tagger, tagger.language)
        fmt = fmt or ("table" if sys.stdout.isatty() else "jsonl")
        if fmt == "jsonl":
            write_jsonl(events, sys.stdout)
        elif fmt == "conll":
            write_conll(events, sys.stdout)
        else:
            write_tables(events, Console())
    except OutputError as err:
        discard_stdout()
        raise click.ClickException(str(err)) from None
    except TaggerError as err:
        raise click.ClickException(str(err)) from None


@cli.command()
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@lang_option
@model_option
@arch_option
@weights_option
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="local corpus folder [default: $TAGGER_DATA, else the Hugging Face Hub]")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="score this token<TAB>tag file instead of running a model")
@click.option("--by-document", is_flag=True,
              help="read each document alone, as `tag` reads its inputs (needs the local folder's"
                   " documents.tsv) [default: the split as one text, as training reads it]")
@click.option("--json", "as_json", is_flag=True, help="print the scores as JSON")
@device_option
def evaluate(split: str, lang: str | None, models: tuple[Path, ...], arch: str | None, weights: str | None, data: str | None,
             predictions: Path | None, by_document: bool, as_json: bool, device: str) -> None:
    """Entity-level precision/recall/F1 (exact span and type) on a corpus split."""
    from tagger.corpus import corpus_of, document_ids, load_split, local_folder, read_labels
    from tagger.evaluate import evaluate as run, evaluate_predictions
    from tagger.output import writing
    from tagger.render import scores_table, summary_table

    try:
        if predictions is not None:
            if by_document:
                raise TaggerError("--by-document changes how a model reads the split; a --predictions file"
                                  " is scored as it is: drop one of them")
            corpus_lang = lang or "uk"
            gold = load_split(corpus_lang, split, data)
            folder = local_folder(corpus_lang, data)
            labels = read_labels(folder, corpus_lang) if folder else list(corpus_of(corpus_lang).labels)
            report = evaluate_predictions(predictions, gold, labels)
        else:
            tagger = open_model(models, lang, arch, device, weights)
            gold = load_split(tagger.language, split, data)
            documents = None
            if by_document:
                folder = local_folder(tagger.language, data)
                if folder is None:
                    raise TaggerError("--by-document needs a local corpus folder (--data DIR or $TAGGER_DATA)"
                                      " with a documents.tsv; the Hub splits have no document boundaries")
                documents = document_ids(folder, split, gold)
            report = run(tagger, gold, model=tagger.name + (", by document" if by_document else ""),
                         documents=documents)
        with writing(sys.stdout):
            if as_json:
                click.echo(json.dumps(report.to_json(), indent=2))
            else:
                console = Console()
                console.print(summary_table(report))
                console.print(scores_table(report, f"{split} split: entity-level scores (exact span and type)"))
    except OutputError as err:
        discard_stdout()
        raise click.ClickException(str(err)) from None
    except TaggerError as err:
        raise click.ClickException(str(err)) from None


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tagger")
