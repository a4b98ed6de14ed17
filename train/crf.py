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

    def log_marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log P(word t has label y) under the chain, by forward-backward; differentiable (a student
        learns a teacher's marginals through it). (batch, seq_len, num_labels); padding rows are 0.

        Args:
            emissions: (batch, seq_len, num_labels) scores.
            mask: (batch, seq_len) True at real words, a prefix of each row; every row has one.
        """
        seq_len = emissions.shape[1]
        alphas = [self.start[None, :] + emissions[:, 0]]  # alphas[t]: log-sum of the paths ending at t, per label
        for t in range(1, seq_len):
            alphas.append(torch.logsumexp(alphas[-1][:, :, None] + self.transitions[None], dim=1) + emissions[:, t])
        end = self.end[None, :].expand_as(alphas[0])
        betas = [end]  # betas[0] is for t = seq_len - 1: the end score, as at every last real word
        for t in range(seq_len - 2, -1, -1):
            step = torch.logsumexp(self.transitions[None] + (emissions[:, t + 1] + betas[-1])[:, None, :], dim=2)
            betas.append(torch.where(mask[:, t + 1, None], step, end))  # t + 1 is padding: t is the last word
        alpha, beta = torch.stack(alphas, 1), torch.stack(betas[::-1], 1)  # (batch, seq_len, num_labels)
        log_z = torch.logsumexp(alpha + beta, dim=2, keepdim=True)  # the same at every real t; taken per t
        return torch.where(mask[:, :, None], alpha + beta - log_z, torch.zeros_like(alpha))
