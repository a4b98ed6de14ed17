"""Models rebuilt from checkpoints: the one place a BiLSTM or BERT tagger is made from plain data."""

from __future__ import annotations

from typing import overload

from tagger.subwords import SubwordEncoder
from tagger.train.bert import BertTagger, encoder_from_config
from tagger.train.checkpoint import BertCheckpoint, Checkpoint, LstmCheckpoint
from tagger.train.config import TrainConfig
from tagger.train.context import ContextEncoder, parse_layers
from tagger.train.lstm import BiLSTMTagger
from tagger.vocab import LstmVocab


@overload
def build_model(checkpoint: LstmCheckpoint) -> tuple[BiLSTMTagger, LstmVocab]: ...


@overload
def build_model(checkpoint: BertCheckpoint) -> tuple[BertTagger, SubwordEncoder]: ...


def build_model(checkpoint: Checkpoint) -> tuple[BiLSTMTagger, LstmVocab] | tuple[BertTagger, SubwordEncoder]:
    """The checkpoint's model (weights loaded, eval mode, CPU) and its vocabulary or subword encoder."""
    if checkpoint["arch"] == "lstm":
        return _lstm(checkpoint)
    return _bert(checkpoint)


def _lstm(checkpoint: LstmCheckpoint) -> tuple[BiLSTMTagger, LstmVocab]:
    """A BiLSTM, with the piece table and the frozen context encoder the checkpoint's config asks for."""
    config = TrainConfig.from_dict(checkpoint["config"])
    vocab = LstmVocab.from_json(checkpoint["vocab"])
    table = checkpoint["state_dict"].get("piece_table")
    context = None
    if config.context != "none":  # the encoder's shape from its stored config; weights from the state dict
        context = ContextEncoder(encoder_from_config(checkpoint["encoder_config"]), parse_layers(config.context_layers))
    model = BiLSTMTagger(config, len(vocab.words), len(vocab.chars), len(checkpoint["labels"]),
                         None if table is None else (table.shape[0], table.shape[1]), context)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), vocab


def _bert(checkpoint: BertCheckpoint) -> tuple[BertTagger, SubwordEncoder]:
    """A BERT tagger, with the CRF if it was trained with one."""
    model = BertTagger(encoder_from_config(checkpoint["encoder_config"]), len(checkpoint["labels"]), 0.0,
                       crf=bool(checkpoint["config"].get("crf", False)))  # checkpoints before --crf lack the key
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), SubwordEncoder.from_json(checkpoint["vocab"])
