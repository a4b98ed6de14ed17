"""Rich tables of entities and scores; builds renderables and never prints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from tagger.analysis import NONE
from tagger.annotate import Entity
from tagger.header import license_clauses
from tagger.metrics import EvalReport


def entities_table(source: str, entities: Sequence[Entity]) -> Table:
    """One document's entities: offsets, label, score (where computed) and text."""
    table = Table(title=f"{source}: {len(entities)} entities", title_justify="left")
    table.add_column("start", justify="right")
    table.add_column("end", justify="right")
    table.add_column("label", style="bold")
    scored = any(e.score is not None for e in entities)
    if scored:
        table.add_column("score", justify="right")
    table.add_column("text")
    for e in entities:
        score = [] if not scored else ["" if e.score is None else f"{e.score:.2f}"]
        table.add_row(str(e.start), str(e.end), e.label, *score, e.text.replace("\n", "⏎"))
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


def error_counts_table(report: EvalReport) -> Table:
    """How many entities fall in each error category (each gold and predicted entity counted once)."""
    table = Table(title="entities by category (each counted once)", title_justify="left")
    counts = report.analysis.counts() if report.analysis else {}
    for category in counts:
        table.add_column(category.replace("_", "+"), justify="right")
    table.add_row(*(str(n) for n in counts.values()))
    return table


def confusion_table(report: EvalReport) -> Table:
    """Gold types (rows) against predicted types (columns); O: no entity (spurious row, missed column).

    A cell `n +m`: n pairs with the same span (the diagonal: correct; elsewhere: type errors), m
    with overlapping spans that differ (the diagonal: boundary errors; elsewhere: both wrong).
    """
    confusion = report.analysis.confusion() if report.analysis else {}
    types = list(dict.fromkeys([*report.per_type, *(t for row in confusion.values() for t in row), *confusion]))
    types = [t for t in types if t != NONE] + [NONE]
    table = Table(title="gold type (rows) x predicted type (columns)", title_justify="left",
                  caption="n +m: n same span, m overlapping; O: no entity", caption_justify="left")
    table.add_column("gold \\ predicted")
    for name in types:
        table.add_column(name, justify="right")
    for gold in types:
        table.add_row(gold, *(cell(confusion.get(gold, {}).get(predicted, {})) for predicted in types),
                      end_section=len(types) > 1 and gold == types[-2])
    return table


def cell(counts: dict[str, int]) -> str:
    """A confusion cell: same-span pairs, then `+` overlapping pairs; `·` for none."""
    same = sum(counts.get(c, 0) for c in ("correct", "type", "missed", "spurious"))
    overlapping = sum(counts.get(c, 0) for c in ("boundary", "boundary_type"))
    text = " ".join(([str(same)] if same or not overlapping else []) + ([f"+{overlapping}"] if overlapping else []))
    return text if text != "0" else "·"


def further_corpora(corpora: list[dict[str, Any]] | None) -> str:
    """"; + B train (n sentences[, m documents ng/*])" for each training corpus after the first (none: "")."""
    return "".join(f"; + {c['corpus']} train ({c['sentences']:,} sentences"
                   + (f", {c['documents']} documents {c['documents_named']})" if c.get("documents_named") else ")")
                   for c in (corpora or [])[1:])


def earlier_training(data: dict[str, Any]) -> str:
    """"; train and validation: documents P* only" when --documents kept some, "; continued from F, trained
    on A train (n sentences) + ..." for a model trained from --init, and "; distilled from F (0.5) + ..."
    for one trained with --teacher (else "")."""
    main = (data.get("corpora") or [{}])[0]
    text = f"; train and validation: documents {main['documents_named']} only" if main.get("documents_named") else ""
    init = data.get("init")
    if init:
        corpora = init.get("training_corpora") or [{"corpus": init.get("corpus"),
                                                     "sentences": (init.get("sentences") or {}).get("train", 0)}]
        text += (f"; continued from {init['checkpoint']}, trained on {corpora[0]['corpus']} train"
                 f" ({corpora[0]['sentences']:,} sentences){further_corpora(corpora)}")
    teachers = data.get("teachers") or []
    if teachers:
        text += "; distilled from " + " + ".join(f"{t['checkpoint']} ({t['weight']:g})" for t in teachers)
    return text


def info_table(facts: dict) -> Table:  # type: ignore[type-arg]
    """`tagger info` of one model file, from `tagger.info.describe`."""
    table = Table(title=facts["file"], title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    scores, data, q, heads = facts["scores"], facts["training_data"], facts["quantization"], facts.get("heads")
    where = scores.get("measured_on") or {}

    def f1(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    rows = [
        ("model", f"{facts['arch']}{' + CRF' if facts['crf'] else ''}, {facts['language']}, {facts['size_bytes'] / 1e6:.1f} MB"),
        ("labels", ", ".join(facts["labels"])),
        *([("encoder", facts["encoder"])] if facts.get("encoder") else []),
        ("trained on", f"{data['corpus']} ({', '.join(f'{k} {v:,}' for k, v in (data['sentences'] or {}).items())} sentences)"
                       + ("" if data["validation_held_out"] is not False else "; validation was trained on")
                       + further_corpora(data.get("corpora")) + earlier_training(data)),
        *([("weights", str(data["weights"]))] if data.get("weights") else []),
        ("license", str(facts["license"])),
        ("test F1 (this file)", f1(scores["test_f1_file"])
         + (f" on {where.get('cpu')} ({', '.join(where.get('flags', []))}), onnxruntime {where.get('onnxruntime')}" if where else "")),
        ("validation F1 (training)", f1(scores["validation_f1"]) + (" (the first head)" if heads else "")
         + ("" if data["validation_held_out"] is not False or scores["validation_f1"] is None
            else " (the split was trained on: not a held-out score)")),
        *([("heads", f"{len(heads)}, the mean of their label probabilities: seeds "
            + ", ".join(str(h["seed"]) for h in heads) + "; validation F1 (training) "
            + ", ".join(f1(h["validation_f1"]) for h in heads))] if heads else []),
        ("quantisation", "none (float32)" if not q else
         f"{q['method']}; " + (f"test F1 {f1(q['test_f1_int8'])} (the heads' mean)" if heads else
                               f"test F1 {f1(q['test_f1_float32'])} float32 -> {f1(q['test_f1_int8'])}, "
                               f"{(q['float32_bytes'] or 0) / 1e6:.0f} MB -> {facts['size_bytes'] / 1e6:.0f} MB")),
        ("exported", f"{facts['exported_at']} (commit {str(facts['commit'])[:10]})"),
        ("runs here on", ", ".join(facts["providers_here"])),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table


def models_table(entries: list) -> Table:  # type: ignore[type-arg]
    """`tagger models`: one row per shipped choice, with every name that reaches it (a language's
    default and its own name share a row). Names never wrap or shorten: they are what users type,
    and a name's prefix and suffix say its language and arch, so those get no columns of their own
    (both are in `--json`), which keeps the table whole at 80 columns."""
    table = Table(title="shipped models (`--model NAME`, or `--lang` / `--arch`)", title_justify="left",
                  show_lines=True)  # a row's names, labels and files take several lines
    table.add_column("name", no_wrap=True, style="bold")
    longest = max((len(label) for e in entries for label in e["labels"]), default=0)
    # narrow: labels wrap between them, and break inside one only where the terminal has no room for it
    table.add_column("labels", overflow="fold", min_width=min(longest + 1, 14))
    table.add_column("files", no_wrap=True)
    for name in ("MB", "test F1"):
        table.add_column(name, justify="right", no_wrap=True)
    # The license is the data's, so one per language: a caption, which leaves the labels room to
    # wrap between labels rather than inside one at 80 columns.
    licenses: dict[str, list[str]] = {}
    for e in entries:
        langs = licenses.setdefault(license_names(e["license"]), [])
        if e["lang"] not in langs:
            langs.append(e["lang"])
    table.caption = "license (of the data): " + "; ".join(f"{', '.join(langs)}: {name}" for name, langs in licenses.items())
    table.caption_justify = "left"
    rows: dict[tuple[str, str, tuple[str, ...]], list[dict]] = {}  # type: ignore[type-arg]
    for e in entries:
        rows.setdefault((e["lang"], e["arch"], tuple(f["file"] for f in e["files"])), []).append(e)
    for same in rows.values():
        e = same[0]
        names = [n["name"] + (" (default)" if n["default"] else "") for n in sorted(same, key=lambda n: not n["default"])]
        size = sum(f["bytes"] for f in e["files"]) / 1e6
        table.add_row("\n".join(names), ", ".join(e["labels"]), "\n".join(f["file"] for f in e["files"]),
                      f"{size:.1f}", "-" if e["test_f1"] is None else f"{e['test_f1']:.4f}")
    return table


def license_names(license_: str) -> str:
    """The license names alone: 'CC BY-NC-SA 4.0 (ner-uk) AND CC BY 4.0 (x)' -> 'CC BY-NC-SA 4.0 AND CC BY 4.0'."""
    return " AND ".join(dict.fromkeys(c.split(" (")[0] for c in license_clauses(license_)))
