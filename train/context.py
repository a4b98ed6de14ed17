"""Contextual word features for the BiLSTM: a frozen pretrained encoder read at each word's first piece.

This is the feature-based use of a pretrained encoder (as ELMo and Flair's stacked embeddings):
the encoder is not fine-tuned, so it cannot overfit a small corpus, and the BiLSTM-CRF on top
learns a mix of its middle layers (which carry more of the word's identity than the last one).
Only the layers up to the deepest one read are kept: the rest would cost time and file size.
"""

from __future__ import annotations

import torch
from torch import nn

from tagger.train.bert import keep_layers


def parse_layers(text: str) -> list[int]:
    """'4,6,8' -> [4, 6, 8]: encoder layers to read (0 is the embedding output)."""
    try:
        layers = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ValueError(f"context_layers must be comma-separated layer numbers like 4,6,8, not {text!r}") from None
    if not layers or layers[0] < 0:
        raise ValueError(f"context_layers must name at least one layer, each 0 or more, not {text!r}")
    return layers


class ContextEncoder(nn.Module):
    """Hidden states of chosen layers at each word's first piece; frozen, always in eval mode."""

    def __init__(self, encoder: nn.Module, layers: list[int]) -> None:
        super().__init__()
        keep_layers(encoder, layers[-1], "--context-layers")  # deeper layers are never read
        self.encoder = encoder.eval().requires_grad_(False)
        self.layers = layers

    def train(self, mode: bool = True) -> ContextEncoder:
        """Stay in eval mode: a frozen encoder's features must not depend on dropout."""
        super().train(mode)
        self.encoder.eval()
        return self

    @property
    def shape(self) -> tuple[int, int]:
        """(layers read, hidden size) of the features per word."""
        return len(self.layers), int(self.encoder.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, word_index: torch.Tensor) -> torch.Tensor:
        """Encoder windows (windows, pieces) and each word's flat first-piece position
        (batch, seq_len) in them -> (batch, seq_len, layers, hidden)."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states
        stacked = torch.stack([states[k] for k in self.layers], dim=2)  # (windows, pieces, layers, hidden)
        return stacked.flatten(0, 1)[word_index]  # (batch, seq_len, layers, hidden)
