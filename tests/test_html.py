"""`--format html` and `--format spacy`: the page as headless Chromium renders it, and displaCy's JSON lines."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import WORDS
from tagger.annotate import DocEnd, DocStart, Entity, Event, TaggedSentence
from tagger.cli import cli
from tagger.html import label_colour, write_html
from tagger.output import write_spacy
from tagger.text import Token

SCRIPT = "<script>document.title='pwned'</script>"
# Two documents: the first with blank lines, leading spaces and markup that must stay text.
DOCS = {
    "news <1>.txt": (f"  Тарас Шевченко жив у Києві.\n\nВін писав: {SCRIPT} & <b>жирне</b>.\n",
                     [("Тарас Шевченко", "PERS", 0.93), ("Києві", "LOC", None), ("<b>жирне</b>", "MISC", 0.5)]),
    "b.txt": ("НАТО", [("НАТО", "ORG", 0.71)]),
}


def events_for(source: str, text: str, found: list[tuple[str, str, float | None]]) -> list[Event]:
    """Events as `annotate` yields them: one sentence per non-blank line, entities found by their text."""
    events: list[Event] = [DocStart(source)]
    position = 0  # end of the previous sentence
    for line in re.finditer(r"[^\n]*\S[^\n]*", text):
        start, end = line.start() + len(line.group()) - len(line.group().lstrip()), line.end()
        tokens = [Token(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text[:end]) if m.start() >= start]
        entities = []
        for name, label, score in found:
            at = text.find(name, start, end)
            if at >= 0:
                entities.append(Entity(at, at + len(name), label, name, score))
        events.append(TaggedSentence(tokens, ["O"] * len(tokens), entities, text[start:end], text[position:start]))
        position = end
    return [*events, DocEnd(source, text[position:])]


def all_events() -> list[Event]:
    """The events of DOCS, document after document."""
    return [e for source, (text, found) in DOCS.items() for e in events_for(source, text, found)]


class Page(HTMLParser):
    """What a page shows: its title, headings, each document's text and its marked entities."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.title, self.headings, self.texts, self.marks, self.scripts = "", [], [], [], 0
        self.stack: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("meta", "link", "br", "img", "hr", "input"):  # void elements never close
            return
        self.stack.append(tag)
        self.scripts += tag == "script"
        if tag == "div" and values.get("class") == "doc":
            self.texts.append("")
        if tag == "mark":
            self.marks.append({"label": values["data-label"], "title": values["title"], "style": values["style"],
                               "text": ""})

    def handle_endtag(self, tag: str) -> None:
        assert self.stack.pop() == tag

    def handle_data(self, data: str) -> None:
        if self.stack[-1:] == ["title"]:
            self.title += data
        elif self.stack[-1:] == ["h2"]:
            self.headings.append(data)
        if "div" in self.stack and self.texts:
            self.texts[-1] += data
        if self.stack[-1:] == ["mark"]:
            self.marks[-1]["text"] += data


def expected_marks() -> list[dict[str, str]]:
    """The marks DOCS should show, in page order."""
    return [{"label": label, "text": name, "style": f"background: {label_colour(label)}",
             "title": label if score is None else f"{label} {score:.2f}"}
            for _, found in DOCS.values() for name, label, score in found]


def html_page(events: list[Event]) -> str:
    """write_html's page for `events` with the ner-uk types in the legend."""
    out = io.StringIO()
    write_html(events, out, ["PERS", "ORG", "LOC", "MISC"])
    return out.getvalue()


def test_page_marks_entities_and_escapes_text() -> None:
    page = Page(html_page(all_events()))
    assert page.title == "tagger: entities" and page.scripts == 0
    assert page.headings == list(DOCS)
    assert page.texts == [text for text, _ in DOCS.values()]  # every character, markup as text
    assert page.marks == expected_marks()


def test_page_is_self_contained() -> None:
    markup = html_page(all_events())
    assert not re.search(r"(src|href)\s*=|@import|url\(|<script|<link", markup, re.I)
    assert markup.count("<article>") == 2 and markup.rstrip().endswith("</html>")


def test_page_of_no_documents_is_a_valid_page() -> None:
    page = Page(html_page([]))
    assert page.title == "tagger: entities" and page.texts == [] and page.marks == []


def test_label_colours_are_stable_and_distinct() -> None:
    assert label_colour("PERS") == "#aa9cfc" and label_colour("creative-work") != label_colour("group")
    assert label_colour("EVENT") == label_colour("EVENT").strip() and label_colour("EVENT").startswith("hsl(")


def test_spacy_lines_hold_the_whole_text_and_char_offsets() -> None:
    out = io.StringIO()
    write_spacy(all_events(), out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["title"] for r in records] == list(DOCS)
    for record, (text, found) in zip(records, DOCS.values()):
        assert record["text"] == text
        assert [(text[e["start"] : e["end"]], e["label"]) for e in record["ents"]] == [(n, lab) for n, lab, _ in found]
        assert all(set(e) == {"start", "end", "label"} for e in record["ents"])


# --- through the CLI, with the session's tiny model --------------------------------------------


def test_cli_spacy_text_is_the_document(exported: Path, tmp_path: Path) -> None:
    """Blank lines, indentation and trailing space between sentences survive: offsets index the text."""
    text = "\n  " + " ".join(WORDS[0]) + "\n\n\t" + "  ".join(WORDS[1]) + "   \n" + " ".join(WORDS[2]) + "\n\n"
    path = tmp_path / "doc.txt"
    path.write_text(text, encoding="utf-8")
    runner = CliRunner()
    spacy = runner.invoke(cli, ["tag", "--model", str(exported), "--format", "spacy", str(path)])
    plain = runner.invoke(cli, ["tag", "--model", str(exported), "--format", "jsonl", str(path)])
    assert spacy.exit_code == 0 and plain.exit_code == 0, spacy.output + plain.output
    (record,) = [json.loads(line) for line in spacy.stdout.splitlines()]
    (entities,) = [json.loads(line)["entities"] for line in plain.stdout.splitlines()]
    assert record["text"] == text and record["title"] == str(path)
    assert record["ents"] == [{k: e[k] for k in ("start", "end", "label")} for e in entities] and entities


def test_cli_html_text_is_the_document(exported: Path) -> None:
    text = " ".join(WORDS[0]) + "\n\n" + SCRIPT + " " + " ".join(WORDS[2]) + "\n"
    result = CliRunner().invoke(cli, ["tag", "--model", str(exported), "--format", "html"], input=text)
    assert result.exit_code == 0, result.output
    page = Page(result.stdout)
    assert page.texts == [text] and page.scripts == 0 and page.headings == ["<stdin>"]
    assert {m["text"] for m in page.marks} >= {"Тарас Шевченко", "Володимир Зеленський"}


# --- rendered by headless Chromium -------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*args: str) -> str:
    """Run headless Chromium with a throwaway profile; its stdout."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_chromium_renders_the_marks_and_runs_no_script(tmp_path: Path) -> None:
    path = tmp_path / "view.html"
    path.write_text(html_page(all_events()), encoding="utf-8")
    page = Page(chromium("--dump-dom", path.as_uri()))
    assert page.title == "tagger: entities"  # the document's <script> did not run
    assert page.scripts == 0
    assert SCRIPT in page.texts[0] and page.texts == [text for text, _ in DOCS.values()]
    assert page.marks == expected_marks()


def test_chromium_paints_the_label_colours(tmp_path: Path) -> None:
    """The screenshot holds each label's background: the inline style is applied, offline."""
    from PIL import Image

    path, shot = tmp_path / "view.html", tmp_path / "view.png"
    path.write_text(html_page(all_events()), encoding="utf-8")
    chromium(f"--screenshot={shot}", "--window-size=800,600", path.as_uri())
    colours = {colour for _, colour in Image.open(shot).convert("RGB").getcolors(1 << 20)}
    for label in ("PERS", "LOC", "MISC", "ORG"):
        hex_colour = label_colour(label)
        assert tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)) in colours, label
