"""`tagger export`: a checkpoint to a parity-checked ONNX file, optionally INT8."""

from __future__ import annotations

from pathlib import Path

import click

from tagger.corpus import DATA_METAVAR


@click.command("export")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="ONNX file to write [default: the checkpoint's name with .onnx; needed for several]")
@click.option("--quantize", type=click.Choice(["int8", "int8-fp16"]), default=None,
              help="write the dynamically quantised graph (int8: all weights INT8; int8-fp16: lookup tables and"
              " LSTMs INT8, encoder matrices float16); prints the test F1 before and after")
@click.option("--data", default=None, metavar=DATA_METAVAR,
              help="corpus folder (or the corpus's Hugging Face Hub name) for --quantize's test F1 [default: the"
                   " one trained on, else $TAGGER_DATA, else the Hub]")
def export(checkpoints: tuple[Path, ...], output: Path | None, quantize: str | None, data: str | None) -> None:
    """Export CHECKPOINT (best_lstm.pth, best_bert.pth) to one self-contained ONNX file.

    Several (seeds of one recipe: checkpoints, or .onnx files already exported from them) become one
    file of several heads, their mean label probability, as `--model A --model B` would average them;
    weights they share (a BiLSTM's frozen piece table) are stored once."""
    from tagger.errors import TaggerError

    try:
        if len(checkpoints) > 1:
            merge(checkpoints, output, quantize, data)
            return
        from tagger.export.onnx import export_checkpoint

        report = export_checkpoint(checkpoints[0], output, quantize, data)
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


def merge(files: tuple[Path, ...], output: Path | None, quantize: str | None, data: str | None) -> None:
    """`tagger export A B ...`: each checkpoint exported (an .onnx file taken as it is), then merged."""
    import tempfile

    from tagger.errors import TaggerError
    from tagger.export.heads import merge_heads

    if output is None:
        raise TaggerError("several files make one: name it with -o FILE.onnx")
    with tempfile.TemporaryDirectory() as folder:
        onnx_files = []
        for k, path in enumerate(files):
            if path.suffix == ".onnx":
                onnx_files.append(path)
                continue
            from tagger.export.onnx import export_checkpoint

            report = export_checkpoint(path, Path(folder) / f"head{k}.onnx", quantize, data)
            click.echo(f"{path}: parity with torch max diff {report.max_diff:.1e}", err=True)
            onnx_files.append(report.path)
        merged = merge_heads(onnx_files, output, data)
    click.echo(f"wrote {merged.path} ({merged.size_bytes / 1e6:.1f} MB): {merged.heads} heads, their mean;"
               f" {merged.shared_bytes / 1e6:.1f} MB of weights stored once, {merged.shared_nodes} nodes computed"
               " once; each head's scores as its file's"
               f" (max diff {merged.max_diff:.1e}); test F1 {merged.test_f1:.4f}", err=True)
