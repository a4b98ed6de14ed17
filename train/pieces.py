"""Pretrained piece features for the BiLSTM: a trimmed tokenizer and its frozen embedding rows."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from safetensors import safe_open
from tokenizers import Tokenizer

from tagger.errors import TaggerError
from tagger.train.trim import select_pieces


def encoder_files(name_or_path: str) -> Path:
    """A local folder with tokenizer.json and model.safetensors for an encoder name or path."""
    from tagger.train.encoders import resolve_encoder

    resolved = resolve_encoder(name_or_path)
    folder = Path(resolved)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(resolved, allow_patterns=["*.json", "*.safetensors"]))
        except Exception as err:  # noqa: BLE001 - offline or unknown name: same advice
            raise TaggerError(
                f"could not get encoder {resolved!r} ({type(err).__name__}); pass a local folder"
                " with tokenizer.json and model.safetensors, or --pieces none"
            ) from None
    for needed in ("tokenizer.json", "model.safetensors"):
        if not (folder / needed).is_file():
            raise TaggerError(f"{folder}: no {needed}; the piece features need a fast tokenizer and safetensors weights")
    return folder


def word_embedding_matrix(weights: Path) -> torch.Tensor:
    """The encoder's input word-piece embedding matrix (vocab, dim)."""
    with safe_open(str(weights), framework="pt") as f:
        names = [k for k in f.keys() if k.endswith("word_embeddings.weight")]
        if len(names) != 1:
            raise TaggerError(f"{weights}: expected one *word_embeddings.weight tensor, found {names or 'none'}")
        return f.get_tensor(names[0]).float()


def build_piece_features(name_or_path: str, words: Iterable[str], top_k: int) -> tuple[str, torch.Tensor]:
    """A trimmed Unigram tokenizer (pieces of `words`, the `top_k` most probable, every single
    character) and its embedding rows, standardised and fp16.

    Returns:
        (tokenizer JSON, table of shape (pieces, dim)); id 0 pads and id 1 is <unk>.
    """
    folder = encoder_files(name_or_path)
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "Unigram":
        raise TaggerError(f"{folder}: piece features need a Unigram (SentencePiece) tokenizer, not {model.get('type')}")
    vocab: list[list] = model["vocab"]
    keep = select_pieces(spec, Tokenizer.from_file(str(folder / "tokenizer.json")), words, top_k)
    spec["model"] = {**model, "unk_id": 1, "vocab": [["<pad>", 0.0], ["<unk>", 0.0]] + [vocab[i] for i in keep]}
    spec["added_tokens"] = []
    spec["post_processor"] = None  # words are encoded alone, with no <s> </s>
    spec["truncation"] = None
    spec["padding"] = None
    matrix = word_embedding_matrix(folder / "model.safetensors")
    rows = matrix[torch.tensor(keep)]
    rows = rows / rows.std()  # unit scale, whatever the encoder's
    table = torch.cat([torch.zeros(2, rows.shape[1]), rows]).half()
    return json.dumps(spec, ensure_ascii=False), table
