"""Rich tables of entities and scores; builds renderables and never prints."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from tagger.annotate import Entity
from tagger.metrics import EvalReport


def entities_table(source: str, entities: Sequence[Entity]) -> Table:
    """One document's entities: offsets, label and text."""
    table = Table(title=f"{source}: {len(entities)} entities", title_justify="left")
    table.add_column("start", justify="right")
    table.add_column("end", justify="right")
    table.add_column("label", style="bold")
    table.add_column("text")
    for e in entities:
        table.add_row(str(e.start), str(e.end), e.label, e.text.replace("\n", "⏎"))
    return table


def scores_table(report: EvalReport, title: str) -> Table:
    """Per-type and micro/macro precision, recall, F1 and support."""
    table = Table(title=title, title_justify="left")
    for name, justify in (("type", "left"), ("precision", "right"), ("recall", "right"),
                          ("F1", "right"), ("support", "right"), ("predicted", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for name, s in report.per_type.items():
        table.add_row(name, f"{s.precision:.4f}", f"{s.recall:.4f}", f"{s.f1:.4f}", str(s.support), str(s.predicted))
    m = report.micro
    table.add_section()
    table.add_row("micro", f"{m.precision:.4f}", f"{m.recall:.4f}", f"{m.f1:.4f}", str(m.support),
                  str(m.predicted), style="bold")
    table.add_row("macro", "", "", f"{report.macro_f1:.4f}", "", "")
    return table


def summary_table(report: EvalReport) -> Table:
    """The figures beside the entity scores: sentences, token accuracy, model."""
    table = Table(show_header=False, box=None)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("model", report.model or "-")
    table.add_row("sentences", str(report.sentences))
    table.add_row("entity micro F1", f"{report.micro.f1:.4f}")
    table.add_row("entity macro F1", f"{report.macro_f1:.4f}")
    table.add_row("token accuracy", f"{report.token_accuracy:.4f} (a side figure: 'O' is most tokens)")
    return table
