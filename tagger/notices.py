"""Once-only notices: the first use of a license that forbids commercial use says so."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

from tagger.artifact import Artifact
from tagger.runtime import cache_dir

def license_notice(artifacts: Sequence[Artifact], say: Callable[[str], None]) -> None:
    """Say once per license that forbids commercial use which models carry it."""
    unseen: dict[str, list[str]] = {}  # license -> files
    for artifact in artifacts:
        license_ = str(artifact.header.get("provenance", {}).get("license", ""))
        if "NC" in license_.replace("-", " ").split() and not marker(license_).exists():
            unseen.setdefault(license_, []).append(artifact.path.name)
    for license_, names in unseen.items():
        say(f"{', '.join(names)}: {license_}; not for commercial use (`tagger info` says more; shown once)")
        seen(license_)


def marker(license_: str) -> Path:
    """The file whose presence says the notice of `license_` was shown."""
    return cache_dir() / "notices" / hashlib.sha256(license_.encode()).hexdigest()[:16]


def seen(license_: str) -> None:
    """Remember that the notice of `license_` was shown."""
    try:
        marker(license_).parent.mkdir(parents=True, exist_ok=True)
        marker(license_).touch()
    except OSError:  # a read-only home: the notice comes again next time, which is harmless
        pass
