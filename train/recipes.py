"""How each architecture is set up for the one training loop: model, optimiser, batches, loss, scorer."""

from __future__ import annotations

import contextlib
import math
import random
import re
from collections.abc import Sequence
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch

from tagger.batching import length_batches
from tagger.conll import Sentence
from tagger.decode import Decoder
from tagger.errors import TaggerError
from tagger.features import LstmEncoder
from tagger.predict import BATCH_WORDS, MAX_BATCH, EmitFn
from tagger.subwords import SubwordEncoder, Window, join_runs, window_sizes
from tagger.train.bert import BertTagger, encoder_config_json, pretrained
from tagger.train.checkpoint import BertCheckpoint
from tagger.train.config import TrainConfig
from tagger.train.context import ContextEncoder, parse_layers
from tagger.train.distill import Teacher, distilled
from tagger.train.lstm import BiLSTMTagger
from tagger.train.pieces import build_piece_features
from tagger.train.scorers import bert_torch_emitter, crf_decoder, lstm_torch_emitter
from tagger.train.vocab import build_vocab
from tagger.vocab import CONTEXT_INPUTS, LstmVocab

# BERT's CRF starts from zero transitions; at the encoder's fine-tuning rate (8e-5) AdamW would move
# them by at most ~0.1 over a run, too little to matter, so they learn at a rate this much higher.
CRF_LR_SCALE = 100.0


class Recipe(ABC):
    """What the loop needs from a model arch: its model, optimiser and schedule, an epoch's
    batches and a batch's loss; the loop itself is the same for all."""

    step_per_batch: ClassVar[bool]  # the schedule advances every batch (warm-up/decay) or every epoch
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    checkpoint: dict[str, Any]  # arch-specific checkpoint fields: vocab, encoder config, ...
    summary: str  # one line for the console

    def __init__(self, labels: list[str], device: torch.device) -> None:
        self.labels = labels
        self.label_index = {t: i for i, t in enumerate(labels)}
        self.device = device
        self.forward: torch.nn.Module | None = None  # what the loop runs the model through: DDP across ranks, else itself

    def run(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        """The model's forward pass for training, through DDP where it is wrapped (DDP averages
        gradients only over what ran through it)."""
        return (self.forward or self.model)(*args, **kwargs)

    @abstractmethod
    def plan(self, rng: random.Random) -> list[list[Any]]:
        """An epoch's batches, shuffled by `rng`."""

    @abstractmethod
    def loss(self, batch: list[Any]) -> torch.Tensor:
        """The mean loss of a batch."""

    @abstractmethod
    def size(self, batch: list[Any]) -> int:
        """How many terms the mean of `loss(batch)` is over (sentences, or words): a slice's weight."""

    @abstractmethod
    def emitter(self) -> EmitFn:
        """Word scores of sentences with the current weights (eval mode), as ONNX inference reads them."""

    def decoder(self) -> Decoder:
        """Decoding with the current weights: Viterbi over valid IOB2 paths, with the CRF's scores if any."""
        return crf_decoder(self.model, self.labels)  # type: ignore[arg-type]


def length_grouped(items: Sequence[Any], lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[Any]]:
    """Shuffled batches of similar-length items (less padding, same randomness per epoch)."""
    order = list(range(len(items)))
    rng.shuffle(order)
    # Sort within windows of 50 batches by length, then shuffle the batches themselves.
    window = batch_size * 50
    chunks: list[list[Any]] = []
    for w in range(0, len(order), window):
        part = sorted(order[w : w + window], key=lambda i: lengths[i])
        chunks += [[items[i] for i in part[b : b + batch_size]] for b in range(0, len(part), batch_size)]
    rng.shuffle(chunks)
    return chunks


# --- BiLSTM-CRF ---------------------------------------------------------------------------------

def context_features(model: BiLSTMTagger, encoder: LstmEncoder, sentences: Sequence[Sentence],
                     device: torch.device) -> list[torch.Tensor]:
    """Each sentence's frozen-encoder features (words, layers, hidden), fp16 on the CPU.

    The encoder never changes in training, so its features are computed once, not every epoch.
    """
    assert model.context is not None
    lengths = [len(s.words) for s in sentences]
    out: list[torch.Tensor] = [torch.empty(0)] * len(sentences)
    with torch.no_grad():
        for batch in length_batches(lengths, MAX_BATCH, BATCH_WORDS):
            inputs = encoder.encode([sentences[k].words for k in batch])
            states = model.context(*(torch.from_numpy(inputs[k]).to(device) for k in CONTEXT_INPUTS))
            for b, k in enumerate(batch):
                out[k] = states[b, : lengths[k]].half().cpu()
    return out


class LstmRecipe(Recipe):
    """Word/char vocabularies, the BiLSTM-CRF, Adam with per-epoch decay."""

    step_per_batch = False

    def __init__(self, config: TrainConfig, train_set: list[Sentence], labels: list[str], device: torch.device) -> None:
        super().__init__(labels, device)
        self.train_set = train_set
        self.lengths = [len(s.words) for s in train_set]
        self.batch_size = config.batch_size
        self.vocab, table, context = lstm_parts(config, train_set)
        model = BiLSTMTagger(config, len(self.vocab.words), len(self.vocab.chars), len(labels),
                             None if table is None else (table.shape[0], table.shape[1]), context)
        if table is not None:
            model.piece_table.copy_(table)
        self.model = model.to(device)
        self.encoder = LstmEncoder(self.vocab)  # built once: validation reuses it every epoch
        # The encoder never changes in training: its features are computed once, and the batches
        # read them, with no encoder windows of their own.
        self.states = context_features(model, self.encoder, train_set, device) if context is not None else None
        self.batch_encoder = LstmEncoder(replace(self.vocab, context=None)) if context is not None else self.encoder
        trainable = [p for p in model.parameters() if p.requires_grad]  # not the frozen encoder
        self.optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda epoch: config.lr_decay**epoch)
        self.checkpoint = {"vocab": self.vocab.to_json()}
        if context is not None:
            self.checkpoint |= {"encoder_config": encoder_config_json(context.encoder), "encoder": config.context}
        self.summary = (f"{len(self.vocab.words)} words, {len(self.vocab.chars)} chars"
                        + (f", {table.shape[0]} pretrained pieces" if table is not None else "")
                        + (f", frozen context encoder {config.context} (layers {config.context_layers})"
                           if context is not None else ""))

    def plan(self, rng: random.Random) -> list[list[int]]:
        return length_grouped(list(range(len(self.train_set))), self.lengths, self.batch_size, rng)

    def loss(self, batch: list[int]) -> torch.Tensor:
        sentences = [self.train_set[k] for k in batch]
        encoded = self.batch_encoder.encode([s.words for s in sentences])
        inputs = {k: torch.from_numpy(v).to(self.device) for k, v in encoded.items()}
        seq_len = inputs["word_ids"].shape[1]
        if self.states is not None:  # the precomputed features, padded like the words
            padded = torch.zeros((len(batch), seq_len, *self.states[batch[0]].shape[1:]), dtype=torch.float16)
            for b, k in enumerate(batch):
                padded[b, : len(self.states[k])] = self.states[k]
            inputs["context_states"] = padded.to(self.device)
        label_ids = torch.zeros((len(batch), seq_len), dtype=torch.long)
        for b, sentence in enumerate(sentences):
            label_ids[b, : len(sentence.tags)] = torch.tensor([self.label_index[t] for t in sentence.tags])
        return self.model.loss(self.run(**inputs), label_ids.to(self.device), inputs["word_ids"] != 0)

    def size(self, batch: list[int]) -> int:
        return len(batch)  # the CRF's likelihood is a mean over sentences

    def emitter(self) -> EmitFn:
        return lstm_torch_emitter(self.model, self.encoder, self.device)  # type: ignore[arg-type]


def lstm_parts(config: TrainConfig,
               train_set: list[Sentence]) -> tuple[LstmVocab, torch.Tensor | None, ContextEncoder | None]:
    """The BiLSTM's vocabulary, its pretrained piece table (--pieces) and frozen context encoder (--context)."""
    vocab = build_vocab((s.words for s in train_set), config.min_word_freq, config.max_word_chars)
    table = None
    if config.pieces != "none":
        tokenizer_json, table = build_piece_features(
            config.pieces, (w for s in train_set for w in s.words), config.piece_top_k
        )
        vocab = replace(vocab, pieces_tokenizer=tokenizer_json, max_word_pieces=config.max_word_pieces)
    context = None
    if config.context != "none":
        # Dropout 0: the encoder is frozen and its features are computed once. A frozen encoder
        # cannot adapt to words segmented unlike in pretraining, so the kept pieces are the
        # training words' script (fine-tuned BERT keeps the plain top_k its shipped models used).
        encoder, subwords = pretrained(config.context, (w for s in train_set for w in s.words), config.vocab_top_k,
                                       0.0, config.max_pieces, in_alphabet=True)
        context = ContextEncoder(encoder, parse_layers(config.context_layers))
        vocab = replace(vocab, context=subwords.to_json())
    return vocab, table, context


# --- BERT ---------------------------------------------------------------------------------------


def autocast_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware runs it natively (2x faster on AVX512-BF16 CPUs and recent GPUs), else None (fp32)."""
    if config.precision == "fp32":
        return None
    if config.precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def layer_depth(name: str, layers: int) -> int | None:
    """0 for the embeddings, k + 1 for encoder layer k, layers + 1 for the classifier; None for a
    parameter of another layout (DistilBERT, ALBERT, DeBERTa name theirs otherwise)."""
    if name.startswith("scores."):
        return layers + 1
    if name.startswith("encoder.embeddings."):
        return 0
    found = re.match(r"encoder\.encoder\.layer\.(\d+)\.", name)
    return int(found.group(1)) + 1 if found else None


def encoder_groups(model: BertTagger, config: TrainConfig) -> list[dict[str, Any]]:
    """AdamW groups of the encoder and classifier: weight decay on matrices only (not biases and
    LayerNorms), and with --layer-decay a rate that shrinks layer by layer towards the embeddings,
    which keep more of what pretraining learnt (Howard & Ruder 2018; Clark et al. 2020)."""
    layers = int(model.encoder.config.num_hidden_layers)
    groups: dict[tuple[int, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if name.startswith("crf."):
            continue
        depth = layer_depth(name, layers)
        if depth is None:
            if config.layer_decay != 1:
                raise TaggerError(f"--layer-decay: encoder {config.encoder} has parameter {name!r}, outside the BERT"
                                  " layout it knows (embeddings, encoder.layer.N); train it with --layer-decay 1")
            depth = layers + 1  # one rate for all: the depth does not matter
        groups.setdefault((depth, param.ndim >= 2), []).append(param)
    # The classifier's group first: the progress line prints the first group's rate, so it shows --lr.
    return [{"params": params, "weight_decay": config.weight_decay if decays else 0.0,
             "lr": config.lr * config.layer_decay ** (layers + 1 - depth)}
            for (depth, decays), params in sorted(groups.items(), reverse=True)]


class BertRecipe(Recipe):
    """A pretrained encoder (trimmed vocabulary), AdamW with warm-up and linear decay, bf16 autocast."""

    step_per_batch = True

    def __init__(self, config: TrainConfig, train_set: list[Sentence], labels: list[str], device: torch.device,
                 first: BertCheckpoint | None = None, teacher: Teacher | None = None) -> None:
        super().__init__(labels, device)
        if first is not None:  # a second stage (--init): the first one's encoder, vocabulary, head and CRF
            model, self.subwords = initial_model(first, labels, config.dropout)
            encoder = model.encoder
        else:
            encoder, self.subwords = pretrained(config.encoder, (w for s in train_set for w in s.words),
                                                config.vocab_top_k, config.dropout, config.max_pieces,
                                                document_context=config.document_context, layers=config.encoder_layers)
            model = BertTagger(encoder, len(labels), config.dropout, crf=config.crf)
        self.model = model.to(device)
        if config.document_context:  # the split is read as one text, as evaluation reads it
            words, tags = join_runs([s.words for s in train_set])[0], join_runs([s.tags for s in train_set])[0]
            train_set = [Sentence(w, t) for w, t in zip(words, tags)]
        self.train_set = train_set
        # --teacher: its label probabilities of every training word, read once (as the windows will be).
        self.targets = teacher.targets([s.words for s in train_set], labels) if teacher is not None else None
        self.distill = config.distill
        self.batch_size = config.batch_size
        # Training items are windows: a sentence longer than max_pieces trains as overlapping parts.
        self.windows, self.pieces = self.subwords.windows([s.words for s in train_set])
        self.sizes = window_sizes(self.windows, self.pieces)
        self.optimizer, self.scheduler = bert_optimizer(self.model, config, len(self.windows))
        self.dtype = autocast_dtype(config, device)
        self.checkpoint = {"vocab": self.subwords.to_json(), "encoder_config": encoder_config_json(encoder),
                           "encoder": config.encoder}
        self.summary = (f"encoder {config.encoder}, {encoder.config.vocab_size} pieces, {len(self.windows)} training"
                        f" windows, {'fp32' if self.dtype is None else str(self.dtype).removeprefix('torch.')} training"
                        + (", CRF" if config.crf else ""))

    def plan(self, rng: random.Random) -> list[list[Window]]:
        return length_grouped(self.windows, self.sizes, self.batch_size, rng)

    def loss(self, batch: list[Window]) -> torch.Tensor:
        input_ids, attention_mask, firsts = self.subwords.batch_inputs(batch, self.pieces)
        # Each word is read at its first piece: gather those scores into (batch, words, labels).
        lengths = np.array([len(f) for f in firsts])
        at = np.zeros((len(batch), max(lengths, default=0)), dtype=np.int64)
        gold = np.zeros_like(at)
        for b, (w, first) in enumerate(zip(batch, firsts)):
            at[b, : len(first)] = first
            gold[b, : len(first)] = [self.label_index[t] for t in self.train_set[w.sentence].tags[w.start : w.end]]
        at_t, gold_t = torch.from_numpy(at).to(self.device), torch.from_numpy(gold).to(self.device)
        mask = torch.from_numpy(np.arange(at.shape[1])[None, :] < lengths[:, None]).to(self.device)
        with self.autocast():
            scores = self.run(torch.from_numpy(input_ids).to(self.device), torch.from_numpy(attention_mask).to(self.device))
        emissions = scores.float().gather(1, at_t[:, :, None].expand(-1, -1, scores.shape[2]))
        crf = self.model.crf
        if crf is not None:  # the sentence likelihood
            loss = crf.nll(emissions, gold_t, mask)
        else:
            loss = torch.nn.functional.cross_entropy(emissions[mask], gold_t[mask])  # mean over words
        if self.targets is None:
            return loss
        targets = np.zeros((*at.shape, len(self.labels)), dtype=np.float32)
        for b, w in enumerate(batch):
            targets[b, : w.end - w.start] = self.targets[w.sentence][w.start : w.end]
        log_marginals = (crf.log_marginals(emissions, mask) if crf is not None
                         else torch.log_softmax(emissions, dim=2))
        return distilled(loss, log_marginals, torch.from_numpy(targets).to(self.device), mask, self.distill,
                         per_sentence=crf is not None)

    def size(self, batch: list[Window]) -> int:
        # The CRF's likelihood is a mean over windows; the cross-entropy one over words.
        return len(batch) if self.model.crf is not None else sum(w.end - w.start for w in batch)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast where chosen, else nothing."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def emitter(self) -> EmitFn:
        return bert_torch_emitter(self.model, self.subwords, len(self.labels), self.device)  # fp32, as ORT scores


def initial_model(first: BertCheckpoint, labels: list[str], dropout: float) -> tuple[BertTagger, SubwordEncoder]:
    """The BERT tagger of checkpoint `first`, to train on. Trained for other labels (another corpus's
    scheme), it keeps its encoder and vocabulary and gets a new classifier and CRF for `labels`."""
    from tagger.train.models import build_model

    model, subwords = build_model(first)
    if list(first["labels"]) != list(labels):
        model = BertTagger(model.encoder, len(labels), dropout, crf=model.crf is not None)
    model.dropout.p = dropout  # build_model makes an inference model; the encoder keeps its stored dropout
    return model, subwords


def bert_optimizer(model: BertTagger, config: TrainConfig,
                   windows: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the encoder's groups (and the CRF's faster one), warm-up to the peak, then linear decay to zero."""
    steps = config.epochs * math.ceil(windows / config.batch_size)
    warmup = max(1, int(config.warmup * steps))

    def rate(step: int) -> float:
        return step / warmup if step < warmup else max(0.0, (steps - step) / max(1, steps - warmup))

    groups = encoder_groups(model, config)
    if model.crf is not None:
        groups.append({"params": list(model.crf.parameters()), "weight_decay": 0.0, "lr": config.lr * CRF_LR_SCALE})
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, rate)


RECIPES: dict[str, type[Recipe]] = {"lstm": LstmRecipe, "bert": BertRecipe}

