"""`tagger export`: a checkpoint to a parity-checked ONNX file, optionally INT8."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX file to write [default: the checkpoint's name with .onnx]")
@click.option("--quantize", type=click.Choice(["int8", "int8-fp16"]), default=None,
              help="write the dynamically quantised graph (int8: all weights INT8; int8-fp16: lookup tables and"
              " LSTMs INT8, encoder matrices float16); prints the test F1 before and after")
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=None,
              help="corpus folder for --quantize's test F1 [default: the one trained on, else $TAGGER_DATA, else the Hub]")
def export(checkpoint: Path, output: Path | None, quantize: str | None, data: str | None) -> None:
    """Export CHECKPOINT (best_lstm.pth, best_bert.pth) to one self-contained ONNX file."""
    from tagger.errors import TaggerError
    from tagger.export.onnx import export_checkpoint

    try:
        report = export_checkpoint(checkpoint, output, quantize, data)
    except TaggerError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB); parity with torch on"
        f" {report.batches} batches: max diff {report.max_diff:.1e} (atol {report.atol:.0e}), tags identical",
        err=True,
    )
    if report.fused:
        click.echo("fused by ONNX Runtime: " + ", ".join(f"{op} {n}" for op, n in report.fused.items()), err=True)
    if report.quantized:
        q = report.quantized
        click.echo(
            f"{q['mode']}: test F1 {q['test_f1_fp32']:.4f} (float32) -> {q['test_f1_int8']:.4f} ({q['mode']}),"
            f" {100 * (q['test_f1_int8'] - q['test_f1_fp32']):+.2f} points; {q['fp32_bytes'] / 1e6:.1f} MB ->"
            f" {report.size_bytes / 1e6:.1f} MB",
            err=True,
        )
