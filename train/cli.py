"""`tagger train`: click options generated from TrainConfig's fields, one per field."""

from __future__ import annotations

import sys
from dataclasses import MISSING, fields
from typing import Any, Callable

import click

from tagger.corpus import DATA_METAVAR
from tagger.header import ARCHS
from tagger.runtime import DEVICES
from tagger.text import LANGS
from tagger.train.config import PRECISIONS, TrainConfig

CHOICES = {"arch": ARCHS, "lang": LANGS, "device": DEVICES, "precision": PRECISIONS}
TYPES: dict[str, Any] = {"bool": bool, "int": int, "float": float, "str": str, "str | None": str, "int | None": int, "float | None": float}


def config_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one `--field-name` option per TrainConfig field, with its default and help."""
    for f in reversed(fields(TrainConfig)):
        default = None if f.default is MISSING else f.default
        many = str(f.type).startswith("tuple[")  # a repeatable option: --extra-train A --extra-train B
        kind: Any = click.Choice(CHOICES[f.name]) if f.name in CHOICES else (str if many else TYPES[str(f.type)])
        flag = kind is bool  # a bool field is an on/off switch: --train-on-validation
        command = click.option(
            f"--{f.name.replace('_', '-')}", f.name, type=kind, default=default, is_flag=flag, multiple=many,
            show_default=default not in (None, ()) and not flag, help=f.metadata.get("help"),
            metavar=DATA_METAVAR if f.name == "data" else None,
        )(command)
    return command


@click.command("train")
@config_options
def train(**options: Any) -> None:
    """Train a tagger; writes best_<arch>.pth, its metrics and curve plot to --out."""
    from rich.console import Console

    from tagger.errors import TaggerError
    from tagger.train.loop import train as run

    try:
        config = TrainConfig(**options)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    try:
        result = run(config, Console(stderr=True))
    except TaggerError as err:
        raise click.ClickException(str(err)) from None
    if result.interrupted:
        sys.exit(130)
