"""`tagger tag INPUT... --output DIR`: one JSONL shard per input, rerun-safe, locally and on Ray."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import assert_clean_error
from tagger.cli import cli

TEXTS = ["Тарас Шевченко народився в Моринцях.\nПрезидент Володимир Зеленський підписав Закон про освіту.",
         "Київський національний університет імені Шевченка розташований у Києві.",
         "У Києві. Шевченко у Моринцях.\n\nЗакон про освіту."]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Inputs of every kind: two .txt, a .jsonl (one record with an id, one without), a .parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(TEXTS[0], encoding="utf-8")
    (folder / "sub" / "b.txt").write_text(TEXTS[1], encoding="utf-8")
    (folder / "c.jsonl").write_text(json.dumps({"id": "doc-7", "text": TEXTS[1]}, ensure_ascii=False) + "\n"
                                    + json.dumps({"text": TEXTS[2]}, ensure_ascii=False) + "\n", encoding="utf-8")
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": [TEXTS[2], TEXTS[0]]}), folder / "d.parquet")
    (folder / "notes.md").write_text("not an input", encoding="utf-8")  # skipped inside a folder
    return folder


def shards(folder: Path) -> dict[str, list[dict]]:
    return {p.name: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]
            for p in sorted(folder.iterdir())}


def run(args: list[str]) -> object:
    return CliRunner().invoke(cli, ["tag", *args])


def test_each_input_gets_the_records_format_jsonl_prints(exported: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(["--model", str(exported), str(corpus), "--output", str(out)])
    assert result.exit_code == 0, result.output
    got = shards(out)
    assert sorted(got) == ["a.txt.jsonl", "b.txt.jsonl", "c.jsonl.jsonl", "d.parquet.jsonl"]
    for name, path in (("a.txt.jsonl", corpus / "a.txt"), ("b.txt.jsonl", corpus / "sub" / "b.txt"),
                       ("c.jsonl.jsonl", corpus / "c.jsonl")):
        plain = run(["--model", str(exported), str(path), "--format", "jsonl"])
        assert got[name] == [json.loads(line) for line in plain.stdout.splitlines()], name
    assert [r["source"] for r in got["c.jsonl.jsonl"]] == ["doc-7", f"{corpus / 'c.jsonl'}:2"]
    assert [r["source"] for r in got["d.parquet.jsonl"]] == ["p1", "p2"]
    assert got["d.parquet.jsonl"][1]["entities"] == got["a.txt.jsonl"][0]["entities"]  # same text, same entities
    summary = result.stderr.strip().splitlines()[-1]
    assert "4 shards written, 0 already complete; 6 documents" in summary and "words/s" in summary
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_patterns_and_a_rerun_that_skips_complete_shards(exported: Path, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--model", str(exported), str(corpus / "*.txt"), str(corpus / "**" / "*.parquet"), "--output", str(out)]
    assert run(args).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.txt.jsonl", "d.parquet.jsonl"]
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    (out / "a.txt.jsonl").unlink()
    again = run(args)
    assert again.exit_code == 0 and "1 shards written, 1 already complete" in again.stderr
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.iterdir()}
    assert after["d.parquet.jsonl"] == before["d.parquet.jsonl"]  # untouched
    assert after["a.txt.jsonl"][1] == before["a.txt.jsonl"][1]  # reproduced


def test_a_failing_input_keeps_the_finished_shards_and_leaves_no_partial_one(exported: Path, corpus: Path,
                                                                             tmp_path: Path) -> None:
    bad = corpus / "e.jsonl"
    bad.write_text(json.dumps({"text": TEXTS[0]}) + "\n" + json.dumps({"body": "no text"}) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = run(["--model", str(exported), str(corpus / "a.txt"), str(bad), str(corpus / "sub"), "--output", str(out)])
    assert 'expected an object with a string "text" field' in assert_clean_error(result)
    assert sorted(p.name for p in out.iterdir()) == ["a.txt.jsonl"]  # e's shard never appeared, half or whole


BAD_INPUTS = {
    "missing": (lambda folder: str(folder / "nope.txt"), "no such file"),
    "no text field": (lambda folder: write(folder / "x.jsonl", '{"id": 1, "body": "x"}\n'), '"text" field'),
    "no text column": (lambda folder: parquet(folder / "y.parquet", {"body": ["x"]}), "no 'text' column"),
    "not an input": (lambda folder: write(folder / "z.pdf", "%PDF"), "not a .txt, .jsonl or .parquet"),
    "nothing matches": (lambda folder: str(folder / "*.nothing"), "no file matches"),
}


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def parquet(path: Path, columns: dict) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return str(path)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_inputs_are_one_line_errors(exported: Path, tmp_path: Path, case: str) -> None:
    make, message = BAD_INPUTS[case]
    result = run(["--model", str(exported), make(tmp_path), "--output", str(tmp_path / "out")])
    assert message in assert_clean_error(result)


def test_output_needs_inputs_and_ray_needs_output(exported: Path, tmp_path: Path) -> None:
    assert "needs input files" in assert_clean_error(run(["--model", str(exported), "--output", str(tmp_path)]))
    assert "add --output DIR" in assert_clean_error(run(["--model", str(exported), "x.txt", "--engine", "ray"]))
    (tmp_path / "file").write_text("", encoding="utf-8")
    (tmp_path / "a.txt").write_text(TEXTS[0], encoding="utf-8")
    result = run(["--model", str(exported), str(tmp_path / "a.txt"), "--output", str(tmp_path / "file")])
    assert "not a folder" in assert_clean_error(result)


def test_a_uri_reads_and_writes_through_pyarrow(exported: Path, corpus: Path, tmp_path: Path) -> None:
    local, uri = tmp_path / "local", f"file://{tmp_path / 'remote'}"
    assert run(["--model", str(exported), str(corpus / "a.txt"), "--output", str(local)]).exit_code == 0
    result = run(["--model", str(exported), f"file://{corpus / 'a.txt'}", "--output", uri])
    assert result.exit_code == 0, result.output
    remote = json.loads((tmp_path / "remote" / "a.txt.jsonl").read_text(encoding="utf-8"))
    assert remote["entities"] == json.loads((local / "a.txt.jsonl").read_text(encoding="utf-8"))["entities"]


# --- the same on Ray ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> object:
    """A local Ray cluster of 2 CPUs for this module, shut down after it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'tagger[ray]'")
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_writes_the_local_engine_s_records(ray_cluster: object, exported: Path, corpus: Path, tmp_path: Path) -> None:
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert run(["--model", str(exported), str(corpus), "--output", str(local)]).exit_code == 0
    args = ["--model", str(exported), str(corpus), "--output", str(on_ray), "--engine", "ray",
            "--concurrency", "2", "--num-cpus", "1"]
    result = run(args)
    assert result.exit_code == 0, result.output
    assert shards(on_ray) == shards(local)
    assert {p.name: p.read_bytes() for p in on_ray.iterdir()} == {p.name: p.read_bytes() for p in local.iterdir()}
    assert "4 shards written" in result.stderr and "6 documents" in result.stderr
    # Killed and rerun: the shards that were complete stay, the missing one comes back the same.
    kept = (on_ray / "d.parquet.jsonl").stat().st_mtime_ns
    (on_ray / "a.txt.jsonl").unlink()
    again = run(args)
    assert again.exit_code == 0 and "1 shards written, 3 already complete" in again.stderr
    assert shards(on_ray) == shards(local) and (on_ray / "d.parquet.jsonl").stat().st_mtime_ns == kept


@pytest.mark.parametrize("case", ["missing", "no text field", "no text column"])
def test_ray_fails_as_the_local_engine_does(ray_cluster: object, exported: Path, tmp_path: Path, case: str) -> None:
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    errors = []
    for engine in ("local", "ray"):
        result = run(["--model", str(exported), path, "--output", str(tmp_path / engine), "--engine", engine])
        errors.append(assert_clean_error(result))
    assert errors[0] == errors[1] and message in errors[0]
