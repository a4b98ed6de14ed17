"""Inference never imports the training stack: proven in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "datasets", "onnx", "matplotlib", "train", "export")


def modules_after(code: str) -> dict[str, object]:
    """Run `code` in a fresh interpreter; return what it printed (JSON) and which HEAVY modules loaded."""
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps({{'loaded': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {"stdout": done.stdout, **json.loads(done.stdout.strip().splitlines()[-1])}


def test_inference_modules_import_no_training_stack() -> None:
    result = modules_after(
        "import tagger.cli, tagger.annotate, tagger.predict, tagger.artifact, tagger.evaluation, tagger.output\n"
        "import tagger.conll, tagger.scheme, tagger.metrics, tagger.decode, tagger.documents, tagger.render\n"
        "import onnxruntime"  # the runtime is allowed; the `onnx` package is not
    )
    assert result["loaded"] == []


def test_tagger_help_lists_train_and_export_without_importing_torch() -> None:
    result = modules_after(
        "from tagger.cli import cli\n"  # not main(): it ends the process before the probe prints
        "sys.argv = ['tagger', '--help']\n"
        "try:\n"
        "    cli(prog_name='tagger')\n"
        "except SystemExit as exit:\n"
        "    assert exit.code in (0, None), exit.code"
    )
    help_text = str(result["stdout"])
    for command in ("train", "export", "tag", "evaluate"):
        assert f"  {command} " in help_text
    assert not {"torch", "transformers", "datasets", "onnx"} & set(result["loaded"])  # type: ignore[arg-type]


def test_the_probe_detects_heavy_imports() -> None:
    """The checks above can fail: a heavy import shows up."""
    pytest.importorskip("onnx")
    assert {"onnx", "train"} <= set(modules_after("import onnx, train.config")["loaded"])  # type: ignore[arg-type]
