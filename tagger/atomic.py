"""Atomic file writes: a temporary file beside the target, renamed over it only when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tagger.errors import TaggerError


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `target`, on failure it vanishes."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(target: str | Path, chunks: Iterable[str]) -> None:
    """Write UTF-8 text to `target` atomically."""
    with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(chunk)


def writable_folder(out: Path) -> None:
    """Prove the output folder exists and is writable before any work."""
    if not out.parent.is_dir():
        raise TaggerError(f"{out.parent}: no such folder for the ONNX file; create it or pass -o FILE")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".probe", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise TaggerError(
            f"{out.parent}: cannot write the ONNX file there ({err.strerror}); pass -o FILE in a writable folder"
        ) from None
