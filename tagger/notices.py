"""Once-only notices: the first use of a model whose license forbids commercial use says so."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from tagger.artifact import Artifact

CACHE_ENV = "TAGGER_CACHE"  # where notices already shown are remembered [default: ~/.cache/tagger]


def cache_dir() -> Path:
    """The folder where tagger remembers things between runs."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tagger"


def license_notice(artifacts: Sequence[Artifact], say: Callable[[str], None]) -> None:
    """Say once per model (file name and license) that its license forbids commercial use."""
    unseen: dict[str, list[str]] = {}  # license -> files
    for artifact in artifacts:
        license_ = str(artifact.header.get("provenance", {}).get("license", ""))
        if "NC" not in license_.replace("-", " ").split():
            continue
        marker = cache_dir() / "notices" / hashlib.sha256(f"{artifact.path.name}\n{license_}".encode()).hexdigest()[:16]
        if marker.exists():
            continue
        unseen.setdefault(license_, []).append(artifact.path.name)
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        except OSError:  # a read-only home: the notice comes again next time, which is harmless
            pass
    for license_, names in unseen.items():
        say(f"{', '.join(names)}: {license_}; not for commercial use (`tagger info` says more; shown once)")
