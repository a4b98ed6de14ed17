"""tagger: named-entity tagging for Ukrainian and English with ONNX Runtime.

This package is the inference side: it never imports torch or transformers.

    import tagger
    nlp = tagger.load("uk")
    entities = nlp("Президент України Володимир Зеленський відвідав Львів.")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Entity", "EvalReport", "Pipeline", "TaggerError", "__version__", "evaluate", "load"]

if TYPE_CHECKING:
    from tagger.annotate import Entity
    from tagger.api import Pipeline, evaluate, load
    from tagger.errors import TaggerError
    from tagger.metrics import EvalReport

_API = {"Entity": "tagger.annotate", "EvalReport": "tagger.metrics", "Pipeline": "tagger.api",
        "TaggerError": "tagger.errors", "evaluate": "tagger.api", "load": "tagger.api"}


def __getattr__(name: str) -> Any:
    """The API, imported on first use: `tagger --version` and `import tagger.x` stay light."""
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'tagger' has no attribute {name!r}")
