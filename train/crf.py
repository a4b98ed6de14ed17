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
        batch, seq_len, _ = emissions.shape
        label_ids = label_ids.masked_fill(~mask, 0)
        maskf = mask.to(emissions.dtype)
        rows = torch.arange(batch, device=emissions.device)
        # Score of the gold path.
        gold = self.start[label_ids[:, 0]] + emissions[rows, 0, label_ids[:, 0]]
        for t in range(1, seq_len):
            step = self.transitions[label_ids[:, t - 1], label_ids[:, t]] + emissions[rows, t, label_ids[:, t]]
            gold = gold + step * maskf[:, t]
        last = label_ids[rows, mask.sum(1) - 1]
        gold = gold + self.end[last]
        # Log partition function by the forward algorithm.
        alpha = self.start[None, :] + emissions[:, 0]  # (batch, num_labels)
        for t in range(1, seq_len):
            # (batch, prev, next) -> (batch, next)
            step = torch.logsumexp(alpha[:, :, None] + self.transitions[None], dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t, None], step, alpha)
        log_z = torch.logsumexp(alpha + self.end[None, :], dim=1)
        return (log_z - gold).mean()
