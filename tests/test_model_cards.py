"""docs/models.md is generated from the shipped models' headers: it says what the files say."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "model_cards.py"


def test_model_cards_match_the_shipped_headers() -> None:
    spec = importlib.util.spec_from_file_location("model_cards", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    page = module.render()
    assert "## `uk_bert.onnx`" in page and "CC BY-NC-SA 4.0" in page
    assert module.OUT.read_text(encoding="utf-8") == page, "docs/models.md is stale: run python scripts/model_cards.py"
