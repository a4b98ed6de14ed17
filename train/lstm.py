"""The BiLSTM-CRF tagger: word + casing + character-CNN features (optionally pretrained piece
embeddings and a frozen encoder's contextual features), a BiLSTM, emission scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tagger.train.config import TrainConfig
from tagger.train.context import ContextEncoder
from tagger.train.crf import CRF

NUM_CASES = 6  # len(tagger.features.CASES)


class CharCNN(nn.Module):
    """A word's character n-gram features, max-pooled over its characters."""

    def __init__(self, num_chars: int, char_dim: int, filters: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, filters, kernel_size=3, padding=1)

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        """(batch, seq_len, word_len) char ids -> (batch, seq_len, filters)."""
        batch, seq_len, word_len = char_ids.shape
        flat = char_ids.reshape(batch * seq_len, word_len)
        # The convolution as one matrix product over each position's window of characters: ONNX
        # Runtime runs a Conv image by image (a word each), the product in one GEMM (the uk BiLSTM
        # graph 1.45x faster). Same weights, so checkpoints of either form load.
        width = self.conv.kernel_size[0]
        x = F.pad(self.embed(flat), (0, 0, width // 2, width // 2))  # (words, word_len + 2, char_dim)
        x = torch.cat([x[:, k : k + word_len] for k in range(width)], dim=2)  # (words, word_len, width * char_dim)
        x = x @ self.conv.weight.permute(2, 1, 0).reshape(-1, self.conv.out_channels) + self.conv.bias
        # Padding characters must not win the max, or results depend on the batch's padding; an
        # added -1e4 never wins against a real character and is cheaper in ONNX Runtime than Where.
        x = (x + (flat == 0)[:, :, None] * -1.0e4).amax(dim=1)  # (words, filters)
        x = x * (flat[:, :1] != 0)  # padding words get zeros, not -1e4
        return x.reshape(batch, seq_len, -1)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence within its length; padding stays at the end.

    Indices come from the input's shape, so the export keeps seq_len dynamic.
    """
    positions = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, seq_len)
    index = lengths[:, None] - 1 - positions  # (batch, seq_len)
    index = torch.where(index >= 0, index, positions.expand_as(index))
    return x.gather(1, index[:, :, None].expand_as(x))


class BiLSTM(nn.Module):
    """Stacked bidirectional LSTM over right-padded batches, exact without packing.

    The backward direction runs a forward LSTM over each sentence reversed within its
    length, so it never reads padding; this exports to ONNX with either exporter.
    """

    def __init__(self, input_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        dims = [input_dim] + [2 * hidden] * (layers - 1)
        self.forward_lstms = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.backward_lstms = nn.ModuleList(nn.LSTM(d, hidden, batch_first=True) for d in dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, seq_len, input_dim) -> (batch, seq_len, 2 * hidden)."""
        for i, (fwd, bwd) in enumerate(zip(self.forward_lstms, self.backward_lstms)):
            if i:
                x = self.dropout(x)
            ahead, _ = fwd(x)
            behind, _ = bwd(reverse_padded(x, lengths))
            x = torch.cat([ahead, reverse_padded(behind, lengths)], dim=-1)
        return x


class BiLSTMTagger(nn.Module):
    """Emission scores of each word for each label; the CRF scores label transitions."""

    def __init__(
        self, config: TrainConfig, num_words: int, num_chars: int, num_labels: int,
        piece_shape: tuple[int, int] | None = None, context: ContextEncoder | None = None,
    ) -> None:
        super().__init__()
        self.word_dropout = config.word_dropout
        self.words = nn.Embedding(num_words, config.word_dim, padding_idx=0)
        self.cases = nn.Embedding(NUM_CASES, config.case_dim, padding_idx=0)
        self.chars = CharCNN(num_chars, config.char_dim, config.char_filters)
        features = config.word_dim + config.case_dim + config.char_filters
        self.has_pieces = piece_shape is not None
        if piece_shape is not None:
            # Frozen pretrained piece embeddings (fp16 halves the file); filled by the trainer.
            self.register_buffer("piece_table", torch.zeros(piece_shape, dtype=torch.float16))
            features += piece_shape[1]
        self.context = context
        if context is not None:
            layers, hidden = context.shape
            # A learned softmax mix of the layers read, times a scale (ELMo's scalar mix).
            self.mix = nn.Parameter(torch.zeros(layers))
            self.gamma = nn.Parameter(torch.ones(1))
            features += hidden
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = BiLSTM(features, config.hidden, config.layers, config.dropout)
        self.scores = nn.Linear(2 * config.hidden, num_labels)
        self.crf = CRF(num_labels)

    def forward(
        self, word_ids: torch.Tensor, case_ids: torch.Tensor, char_ids: torch.Tensor,
        piece_ids: torch.Tensor | None = None, input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None, word_index: torch.Tensor | None = None,
        context_states: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Emission scores (batch, seq_len, num_labels); word id 0 marks padding.

        A model with a context encoder reads its windows (input_ids, attention_mask, word_index),
        or, in training, their features computed once beforehand (context_states).
        """
        lengths = (word_ids != 0).sum(dim=1)  # (batch,)
        if self.training and self.word_dropout > 0:
            # Replace known words by <unk> at random, so the <unk> vector learns to serve.
            drop = (torch.rand_like(word_ids, dtype=torch.float) < self.word_dropout) & (word_ids > 1)
            word_ids = word_ids.masked_fill(drop, 1)
        parts = [self.words(word_ids), self.cases(case_ids), self.chars(char_ids)]
        if self.has_pieces:
            if piece_ids is None:
                raise ValueError("this model reads piece_ids; the vocabulary must have a piece tokenizer")
            present = (piece_ids != 0).unsqueeze(-1)  # (batch, seq_len, pieces, 1)
            vectors = F.embedding(piece_ids, self.piece_table).float()  # (batch, seq_len, pieces, dim)
            count = present.sum(2).clamp(min=1)  # (batch, seq_len, 1)
            parts.append((vectors * present).sum(2) / count)  # mean over a word's pieces
        if self.context is not None:
            if context_states is None:
                if input_ids is None or attention_mask is None or word_index is None:
                    raise ValueError("this model reads encoder windows; the vocabulary must have a context tokenizer")
                context_states = self.context(input_ids, attention_mask, word_index)
            weights = torch.softmax(self.mix, dim=0)[:, None]  # (layers, 1)
            parts.append((context_states.float() * weights).sum(2) * self.gamma)  # (batch, seq_len, hidden)
        x = torch.cat(parts, dim=-1)
        x = self.lstm(self.dropout(x), lengths)  # (batch, seq_len, 2 * hidden)
        return self.scores(self.dropout(x))  # (batch, seq_len, num_labels)

    def loss(self, emissions: torch.Tensor, label_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """CRF negative log-likelihood of the gold labels."""
        return self.crf.nll(emissions, label_ids, mask)
