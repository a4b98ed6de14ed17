"""Linear-chain CRF loss over emission scores (decoding is numpy Viterbi in tagger.decode)."""

from __future__ import annotations

import torch
from torch import nn


class CRF(nn.Module):
    """Transition, start and end scores, trained by the sentence log-likelihood."""

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        self.transitions = nn.Parameter(torch.zeros(num_labels, num_labels))  # [prev, next]
        self.start = nn.Parameter(torch.zeros(num_labels))
        self.end = nn.Parameter(torch.zeros(num_labels))

    def nll(self, emissions: torch.Tensor, label_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the gold label sequences.

        Args:
            emissions: (batch, seq_len, num_labels) scores.
            label_ids: (batch, seq_len) gold ids (any value at padding).
            mask: (batch, seq_len) True at real words; every sentence has at least one.
        """
        seq_len = emissions.shape[1]
        label_ids = label_ids.masked_fill(~mask, 0)
        maskf = mask.to(emissions.dtype)
        # Score of the gold path: start, emissions and transitions, all positions at once.
        emitted = emissions.gather(2, label_ids[:, :, None])[:, :, 0]  # (batch, seq_len)
        moves = self.transitions[label_ids[:, :-1], label_ids[:, 1:]]  # (batch, seq_len - 1)
        last = label_ids.gather(1, (mask.sum(1) - 1)[:, None])[:, 0]  # (batch,)
        gold = (
            self.start[label_ids[:, 0]]
            + (emitted * maskf).sum(1)
            + (moves * maskf[:, 1:]).sum(1)
            + self.end[last]
        )
        # Log partition function by the forward algorithm.
        alpha = self.start[None, :] + emissions[:, 0]  # (batch, num_labels)
        for t in range(1, seq_len):
            # (batch, prev, next) -> (batch, next)
            step = torch.logsumexp(alpha[:, :, None] + self.transitions[None], dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t, None], step, alpha)
        log_z = torch.logsumexp(alpha + self.end[None, :], dim=1)
        return (log_z - gold).mean()
