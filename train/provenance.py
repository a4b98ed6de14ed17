"""Where a model came from: the code's commit (training and export both record it)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_sha() -> str:
    """The commit of the code that runs, or '' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
