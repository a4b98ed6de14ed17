"""The torch model's scores, read as ONNX inference reads them: training validates and export checks
parity with these, so both judge the weights through the same emitters and decoder."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tagger.decode import Decoder
from tagger.features import LstmEncoder
from tagger.predict import BertEmitter, LstmEmitter
from tagger.subwords import SubwordEncoder
from tagger.train.bert import BertTagger
from tagger.train.lstm import BiLSTMTagger

TORCH_CPU = torch.device("cpu")


def torch_run(model: torch.nn.Module, inputs: dict[str, np.ndarray], device: torch.device = TORCH_CPU) -> np.ndarray:
    """The model's float32 scores for numpy inputs (no gradients)."""
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v).to(device) for k, v in inputs.items()}).float().cpu().numpy()


def crf_decoder(model: BiLSTMTagger | BertTagger, labels: list[str]) -> Decoder:
    """The numpy decoder inference uses, with the model's current CRF scores (IOB2 constraints only without a CRF)."""
    crf = model.crf
    if crf is None:
        return Decoder(labels)
    return Decoder(labels, *(p.detach().cpu().numpy() for p in (crf.transitions, crf.start, crf.end)))


def crf_scores(model: BiLSTMTagger | BertTagger) -> dict[str, list[Any]]:
    """The CRF's scores as plain data, for the ONNX header (inference decodes with them)."""
    assert model.crf is not None
    return {k: getattr(model.crf, k).detach().cpu().tolist() for k in ("transitions", "start", "end")}


class TorchRun:
    """The torch model's scores for named numpy inputs, as `tagger.predict.OnnxRun` gives the graph's."""

    def __init__(self, model: torch.nn.Module, device: torch.device = TORCH_CPU) -> None:
        self.model = model
        self.device = device

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Graph inputs -> float32 scores, (batch, positions, num_labels)."""
        return torch_run(self.model, inputs, self.device)


def lstm_torch_emitter(model: BiLSTMTagger, encoder: LstmEncoder, device: torch.device = TORCH_CPU) -> LstmEmitter:
    """Word scores by the torch BiLSTM, pieced as ONNX inference pieces them."""
    return LstmEmitter(encoder, TorchRun(model, device))


def bert_torch_emitter(model: BertTagger, subwords: SubwordEncoder, num_labels: int,
                       device: torch.device = TORCH_CPU) -> BertEmitter:
    """Word scores by the torch BERT tagger, through the same windows as ONNX inference."""
    return BertEmitter(subwords, TorchRun(model, device), num_labels)
