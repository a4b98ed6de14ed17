"""ONNX Runtime's BERT fusion: an export form of the BERT tagger it recognises, and the fused graph, checked.

ONNX Runtime fuses a BERT encoder into one `Attention` kernel per layer, `SkipLayerNormalization`,
`EmbedLayerNormalization` and `BiasGelu` (`onnxruntime.transformers.optimizer`, 1.3-1.4x faster
on the uk model, the same tags) when the graph has the shape its pattern matcher expects:
- the attention scores scaled by a Div by sqrt(head size), as BERT's eager attention used to
  (transformers 5 multiplies by the scale, so the mask's Add has two Mul parents and the matcher
  follows the scale's: "fuse_attention: failed to match mask path", no Attention fused);
- the additive mask built once from the 0/1 mask, (1 - mask) * -10000, not the Where/IsNaN
  guards that SDPA exports in every layer.
Training keeps SDPA: only the model traced for export gets `LeanBert` and `lean_attention`.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tagger.errors import ArtifactError
from tagger.train.bert import BertTagger

FUSED = ("Attention", "SkipLayerNormalization", "EmbedLayerNormalization", "BiasGelu")  # what the fusion writes
ATTENTION = "tagger_lean"  # the name lean_attention is registered under in transformers' AttentionInterface
MASK_MIN = -10000.0  # added to the scores of padded pieces: exp(-1e4) is 0 in float32, as softmax over finfo.min


class FusionError(ArtifactError):
    """ONNX Runtime's fusion did not fuse every encoder layer; the export writes nothing."""


def lean_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: torch.Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                   **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's eager attention with the scale as a Div by sqrt(head size), the shape ORT's fusion matches.

    query, key, value: (batch, heads, pieces, head size); attention_mask: additive, (batch, 1, 1, pieces).
    Eval only (the export copy): no dropout.
    """
    scores = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(query.shape[-1])  # (batch, heads, pieces, pieces)
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)  # (batch, heads, pieces, pieces)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs  # (batch, pieces, heads, head size)


class LeanBert(nn.Module):
    """A BertTagger's encoder and scores, traced with the additive mask built once and `lean_attention`."""

    def __init__(self, encoder: nn.Module, scores: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.scores = scores

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, pieces) ids and 0/1 mask -> (batch, pieces, num_labels) scores."""
        additive = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * MASK_MIN  # (batch, 1, 1, pieces)
        # transformers uses a 4-D float mask as given: no per-layer mask arithmetic in the graph
        hidden = self.encoder(input_ids=input_ids, attention_mask=additive).last_hidden_state  # (batch, pieces, hidden)
        return self.scores(hidden)  # (batch, pieces, num_labels)


def lean_copy(tagger: BertTagger) -> LeanBert:
    """A copy of `tagger` in the form ORT fuses (its eager attention switched to `lean_attention`), in eval mode."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, lean_attention)
    encoder = copy.deepcopy(tagger.encoder)  # the caller's model keeps SDPA
    encoder.set_attn_implementation(ATTENTION)
    return LeanBert(encoder, copy.deepcopy(tagger.scores)).eval()


def fuse(path: Path, num_heads: int, hidden_size: int, layers: int) -> dict[str, int]:
    """Rewrite the BERT graph at `path` with ORT's fusions, in place; refuse a graph not fully fused.

    The caller names the file it was to write: the message starts "export refused".

    Returns:
        how many nodes of each fused op the graph holds
    Raises:
        FusionError: fewer or more Attention nodes than encoder layers (a transformers or
            onnxruntime upgrade changed the pattern); nothing was written by the caller.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    # opt_level 0: only the Python fusions, no ORT graph optimisation baked into the file (ORT
    # applies its own, for the machine it runs on, when the session starts)
    optimized = optimize_model(str(path), model_type="bert", num_heads=num_heads, hidden_size=hidden_size, opt_level=0)
    counts = Counter(node.op_type for node in optimized.model.graph.node)
    fused = {op: counts.get(op, 0) for op in FUSED}
    if fused["Attention"] != layers:
        raise FusionError(
            f"export refused: ONNX Runtime's BERT fusion wrote {fused['Attention']} Attention nodes"
            f" for {layers} encoder layers ({', '.join(f'{op} {n}' for op, n in fused.items())}); check the transformers and onnxruntime"
            " versions against export/fusion.py's lean_attention (the pattern it matches), or report it"
        )
    optimized.save_model_to_file(str(path))
    return fused
