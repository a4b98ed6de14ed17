"""Viterbi decoding of emission scores into label ids that always form valid IOB2."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tagger.scheme import allowed_transitions

# A finite "minus infinity" keeps the arithmetic free of inf - inf = nan.
FORBIDDEN = -1.0e4


class Decoder:
    """Batched Viterbi over emissions plus (optional CRF) transitions, with IOB2 constraints."""

    def __init__(
        self,
        labels: Sequence[str],
        transitions: np.ndarray | None = None,
        start: np.ndarray | None = None,
        end: np.ndarray | None = None,
    ) -> None:
        num_labels = len(labels)
        allowed, allowed_start = allowed_transitions(labels)
        zeros = np.zeros(num_labels, dtype=np.float32)
        trans = np.zeros((num_labels, num_labels), np.float32) if transitions is None else transitions
        self.transitions = np.where(allowed, trans, FORBIDDEN).astype(np.float32)  # (prev, next)
        self.start = np.where(allowed_start, zeros if start is None else start, FORBIDDEN).astype(
            np.float32
        )
        self.end = (zeros if end is None else end).astype(np.float32)

    def decode(self, emissions: np.ndarray, lengths: Sequence[int]) -> list[list[int]]:
        """Best label ids per sentence.

        Args:
            emissions: (batch, seq_len, num_labels) scores; positions past a length are ignored.
            lengths: number of words of each sentence.
        """
        batch, seq_len, num_labels = emissions.shape
        lengths_arr = np.asarray(lengths, dtype=np.int64)
        if batch == 0 or seq_len == 0:
            return [[] for _ in range(batch)]
        score = self.start[None, :] + emissions[:, 0]  # (batch, num_labels)
        backpointers = np.zeros((max(seq_len - 1, 0), batch, num_labels), dtype=np.int64)
        for t in range(1, seq_len):
            # (batch, prev, next): best previous label for every next label
            candidates = score[:, :, None] + self.transitions[None, :, :]
            best_prev = candidates.argmax(axis=1)  # (batch, num_labels)
            new_score = np.take_along_axis(candidates, best_prev[:, None, :], axis=1)[:, 0]
            new_score += emissions[:, t]
            active = (t < lengths_arr)[:, None]  # finished sentences keep their score
            score = np.where(active, new_score, score)
            backpointers[t - 1] = np.where(active, best_prev, np.arange(num_labels)[None, :])
        score = score + self.end[None, :]
        best_last = score.argmax(axis=1)
        paths: list[list[int]] = []
        for b in range(batch):
            length = int(lengths_arr[b])
            label = int(best_last[b])
            path = [label]
            for t in range(length - 2, -1, -1):
                label = int(backpointers[t, b, label])
                path.append(label)
            path.reverse()
            paths.append(path[:length] if length else [])
        return paths

    def forward_backward(self, emissions: np.ndarray, lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """alpha, beta (batch, seq_len, num_labels) and log Z (batch,) of this chain, in float64.

        alpha[t, y]: log-sum of every prefix ending in y at t (emission at t included); beta[t, y]:
        log-sum of every suffix after y at t (the end score included).
        """
        emissions = emissions.astype(np.float64)  # sums over hundreds of words: float32 would drift
        batch, seq_len, num_labels = emissions.shape
        last = np.asarray(lengths, dtype=np.int64) - 1
        alpha = np.empty_like(emissions)
        beta = np.zeros_like(emissions)
        alpha[:, 0] = self.start[None, :] + emissions[:, 0]
        for t in range(1, seq_len):
            alpha[:, t] = logsumexp(alpha[:, t - 1, :, None] + self.transitions[None], axis=1) + emissions[:, t]
        beta[np.arange(batch), np.maximum(last, 0)] = self.end
        for t in range(seq_len - 2, -1, -1):
            inner = logsumexp(self.transitions[None] + (emissions[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
            beta[:, t] = np.where((t < last)[:, None], inner, beta[:, t])
        log_z = logsumexp(alpha[np.arange(batch), np.maximum(last, 0)] + self.end[None, :], axis=1)
        return alpha, beta, log_z

    def log_marginals(self, emissions: np.ndarray, lengths: Sequence[int]) -> np.ndarray:
        """log P(label of word t | sentence) under this chain (forward-backward), (batch, seq_len, num_labels).

        The probabilities of several models can be averaged where their raw scores cannot: a CRF's
        emissions and a softmax's logits live on different scales. Forbidden IOB2 moves get ~0
        probability. Positions past a sentence's length are 0 (probability 1) and meaningless.
        """
        batch, seq_len, _ = emissions.shape
        if batch == 0 or seq_len == 0:
            return np.zeros_like(emissions, dtype=np.float32)
        alpha, beta, log_z = self.forward_backward(emissions, lengths)
        last = np.asarray(lengths, dtype=np.int64) - 1
        out = alpha + beta - log_z[:, None, None]
        return np.where((np.arange(seq_len)[None, :] <= last[:, None])[..., None], out, 0.0).astype(np.float32)

    def span_probabilities(self, emissions: np.ndarray, lengths: Sequence[int],
                           spans: Sequence[Sequence[tuple[int, int, int, int]]]) -> list[list[float]]:
        """P(exactly this entity) of each span of each sentence of a padded batch, under this chain.

        Args:
            emissions: (batch, seq_len, num_labels) scores, as for `decode`.
            lengths: number of words of each sentence.
            spans: per sentence, (start, end, B label id, I label id) per entity, `end` exclusive.

        The probability sums every tag sequence of the sentence that has B at `start`, I on to
        `end - 1` and no I of the same type at `end`: this entity with this span, not a longer one;
        the tags outside it may be anything.
        """
        if not any(spans):
            return [[] for _ in spans]
        alpha, beta, log_z = self.forward_backward(emissions, lengths)
        e = emissions.astype(np.float64)
        running = np.cumsum(e, axis=1)  # running[b, t, y]: sum of e[b, :t+1, y]
        flat = np.array([(b, *span) for b, found in enumerate(spans) for span in found], dtype=np.int64)
        b, start, end, begin, inside = flat.T
        width = end - start
        trans = self.transitions.astype(np.float64)
        # B at start, then I to end - 1: the path's transitions and emissions after the first word.
        body = np.where(width > 1, trans[begin, inside] + (width - 2) * trans[inside, inside]
                        + running[b, end - 1, inside] - running[b, start, inside], 0.0)
        last = np.where(width > 1, inside, begin)
        n = np.asarray(lengths, dtype=np.int64)[b]
        nxt = np.minimum(end, e.shape[1] - 1)
        after = trans[last] + e[b, nxt] + beta[b, nxt]  # (spans, labels): the word after the entity
        after[np.arange(len(flat)), inside] = -np.inf  # may be anything but a continuation of it
        tail = np.where(end < n, logsumexp(after, axis=1), self.end[last])
        probs = np.minimum(1.0, np.exp(alpha[b, start, begin] + body + tail - log_z[b])).tolist()
        ends = np.cumsum([len(found) for found in spans]).tolist()
        return [probs[stop - len(found) : stop] for found, stop in zip(spans, ends)]


def logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    """log(sum(exp(x))) along `axis`, without overflow."""
    top = x.max(axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.exp(x - top).sum(axis=axis))
