"""`tagger export`: a checkpoint to a parity-checked ONNX file."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX file to write [default: the checkpoint's name with .onnx]")
def export(checkpoint: Path, output: Path | None) -> None:
    """Export CHECKPOINT (best_lstm.pth) to one self-contained ONNX file."""
    from tagger.errors import TaggerError
    from export.onnx import ATOL, export_checkpoint

    try:
        report = export_checkpoint(checkpoint, output)
    except TaggerError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB); parity with torch on"
        f" {report.batches} batches: max diff {report.max_diff:.1e} (atol {ATOL:.0e}), tags identical",
        err=True,
    )
