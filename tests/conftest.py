"""Shared fixtures: a tiny inline Ukrainian corpus, and a tiny BiLSTM trained and exported on it once."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from click.testing import Result

# Before anything imports `datasets` or `huggingface_hub` (they read these at import time):
# never touch the network and never write a cache into the home folder.
_HF_TMP = tempfile.mkdtemp(prefix="tagger-tests-hf-")
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_TMP, "datasets")
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["TAGGER_CACHE"] = os.path.join(_HF_TMP, "tagger-cache")  # license notices shown once: not in ~/.cache


@pytest.fixture(scope="session", autouse=True)
def _license_notices_already_shown() -> None:
    """The one-time CC BY-NC notice would otherwise land on the stderr of whichever test runs first
    (tests/test_api.py checks the notice itself, in a cache of its own)."""
    from tagger.corpus import corpus_of
    from tagger.notices import seen

    seen(corpus_of("uk").license)

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TAGGER_SHARED_DATA", REPO / ".." / "shared" / "data"))

LABELS = ["O", "B-PERS", "I-PERS", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]

# Three sentences, every type, multi-word entities (2, 3 and 5 words), one-word entities.
CONLL = """\
Тарас\tB-PERS
Шевченко\tI-PERS
народився\tO
в\tO
Моринцях\tB-LOC
.\tO

Київський\tB-ORG
національний\tI-ORG
університет\tI-ORG
імені\tI-ORG
Шевченка\tI-ORG
розташований\tO
у\tO
Києві\tB-LOC
.\tO

Президент\tO
Володимир\tB-PERS
Зеленський\tI-PERS
підписав\tO
Закон\tB-MISC
про\tI-MISC
освіту\tI-MISC
.\tO
"""


def parse_inline(text: str = CONLL) -> list[tuple[list[str], list[str]]]:
    """(words, tags) of each sentence of an inline CoNLL string (independent of tagger.conll)."""
    sentences = []
    for block in text.strip("\n").split("\n\n"):
        pairs = [line.split("\t") for line in block.splitlines()]
        sentences.append(([w for w, _ in pairs], [t for _, t in pairs]))
    return sentences


SENTENCES = parse_inline()
WORDS = [w for w, _ in SENTENCES]
TAGS = [t for _, t in SENTENCES]


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_HF_TMP, ignore_errors=True)


def write_corpus(folder: Path, conll: str = CONLL, labels: list[str] = LABELS) -> Path:
    """A corpus folder: train = validation = test = `conll`, plus labels.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        (folder / f"{split}.conll").write_text(conll, encoding="utf-8")
    (folder / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return folder


def shared_corpus(name: str) -> Path:
    """A real corpus folder under $TAGGER_SHARED_DATA, or skip the test that needs it."""
    folder = SHARED / name
    if not (folder / "test.conll").is_file():
        pytest.skip(f"real corpus {name} not found at {folder} (set TAGGER_SHARED_DATA to the folder holding it)")
    return folder


def one_thread() -> None:
    """Torch on one thread: the machine is small and shared."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _one_thread_if_torch() -> None:
    """One torch thread for test modules that imported torch (importing it here would cost 2 s)."""
    if "torch" in sys.modules:
        one_thread()


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    """A fresh tiny corpus folder for one test."""
    return write_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def session_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus folder the session's model is trained on (read only)."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@dataclass(frozen=True)
class Trained:
    """The session's tiny trained model: its run, its files and the training log."""

    config: object  # train.config.TrainConfig
    result: object  # train.loop.TrainResult
    out: Path
    checkpoint: Path
    log: str


def tiny_config(data: Path, out: Path, **overrides: object) -> object:
    """A tiny BiLSTM config that overfits the inline sentences in a few seconds."""
    from tagger.train.config import TrainConfig

    options: dict[str, object] = dict(
        lang="uk", data=str(data), out=str(out), seed=13, device="cpu",
        hidden=16, layers=1, word_dim=16, case_dim=4, char_dim=8, char_filters=16,
        epochs=60, patience=10, dropout=0.0, word_dropout=0.0, lr=0.05, lr_decay=1.0, batch_size=8,
    )
    options.update(overrides)
    return TrainConfig(**options)


@pytest.fixture(scope="session")
def trained(session_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Train the tiny BiLSTM once per session on the inline corpus."""
    out = tmp_path_factory.mktemp("trained")
    return train_tiny(tiny_config(session_corpus, out), out)


def train_tiny(config: object, out: Path) -> Trained:
    """Train a tiny model on one thread, with the console captured."""
    from rich.console import Console

    from tagger.train.loop import train

    one_thread()
    log = io.StringIO()
    result = train(config, Console(file=log, width=120, color_system=None))
    return Trained(config, result, out, Path(result.checkpoint), log.getvalue())


def quiet_export(checkpoint: Path, out: Path | None = None, **options: object) -> object:
    """export_checkpoint with torch's own TracerWarnings ignored (as torch does outside pytest)."""
    from tagger.export.onnx import export_checkpoint

    with warnings.catch_warnings():
        silence_tracer_warnings()
        return export_checkpoint(checkpoint, out, **options)


@pytest.fixture(scope="session")
def exported(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's model exported to ONNX (read only: copy it before editing)."""
    out = tmp_path_factory.mktemp("exported") / "tiny_lstm.onnx"
    report = quiet_export(trained.checkpoint, out)
    assert report.path == out and out.is_file()
    return out


def silence_tracer_warnings() -> None:
    """Ignore torch's TracerWarnings, as torch itself does outside `filterwarnings = error`.

    The TorchScript exporter warns from torch/nn/modules/rnn.py about its own shape checks;
    torch registers an "ignore" filter for warnings from its library modules, which the
    pytest "error" filter would otherwise override.
    """
    import torch

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning, module=r"torch\.")


def torch_tags(model, vocab, labels: list[str], words: list[list[str]]) -> list[list[str]]:  # noqa: ANN001
    """Tags of the torch BiLSTM, through the same emitter and decoder as ONNX inference."""
    from tagger.features import LstmEncoder
    from tagger.predict import tag_with
    from tagger.train.scorers import crf_decoder, lstm_torch_emitter

    return tag_with(lstm_torch_emitter(model, LstmEncoder(vocab)), crf_decoder(model, labels), labels, words)


# --- the tiny BERT -----------------------------------------------------------------------------

ASSETS = Path(__file__).resolve().parent / "assets"
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                 max_position_embeddings=64, type_vocab_size=2)  # odd, distinct sizes catch shape mix-ups
ALPHABET = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюяАБВГҐДЕЄЖЗИІЇЙКЛМНОПРСТУФХЦЧШЩЬЮЯ'’-.,:;!?()\"«»0123456789" \
           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@#/"


def write_tiny_encoder(folder: Path) -> Path:
    """A Hugging Face folder: a random tiny BERT and a Unigram tokenizer from tests/assets/vocab.txt."""
    import tokenizers as tk
    import torch
    from transformers import BertConfig, BertModel

    pieces: list[tuple[str, float]] = []
    for line in (ASSETS / "vocab.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            piece, score = line.split("\t")
            pieces.append((piece, float(score)))
    known = {p for p, _ in pieces}
    for char in ALPHABET:  # every character alone and word-initial, so any text over it segments
        pieces += [(c, -12.0) for c in (char, "\u2581" + char) if c not in known]
    tokenizer = tk.Tokenizer(tk.models.Unigram(pieces, 3, False))
    tokenizer.normalizer = tk.normalizers.NFKC()
    tokenizer.pre_tokenizer = tk.pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = tk.decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.add_special_tokens([tk.AddedToken(s, special=True) for s in ("<s>", "<pad>", "</s>", "<unk>")])
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    specials = {"bos_token": "<s>", "cls_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
                "pad_token": "<pad>", "unk_token": "<unk>"}
    (folder / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 64, **specials}), encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(pieces), pad_token_id=1, **TINY_BERT)
    BertModel(config, add_pooling_layer=False).save_pretrained(str(folder))
    return folder


def tiny_bert_config(data: Path, out: Path, encoder: Path, **overrides: object) -> object:
    """A tiny BERT run that overfits the inline sentences in seconds."""
    from tagger.train.config import TrainConfig

    options: dict[str, object] = dict(
        arch="bert", lang="uk", data=str(data), out=str(out), seed=13, device="cpu", encoder=str(encoder),
        epochs=40, patience=40, lr=3e-3, warmup=0.1, dropout=0.0, batch_size=8, max_pieces=64, vocab_top_k=10,
        precision="fp32",
    )
    options.update(overrides)
    return TrainConfig(**options)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny encoder folder (read only)."""
    return write_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


@pytest.fixture(scope="session")
def trained_bert(session_corpus: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Fine-tune the tiny BERT once per session on the inline corpus."""
    out = tmp_path_factory.mktemp("trained-bert")
    return train_tiny(tiny_bert_config(session_corpus, out, tiny_encoder), out)


@pytest.fixture(scope="session")
def exported_bert(trained_bert: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT exported to ONNX (read only)."""
    out = tmp_path_factory.mktemp("exported-bert") / "tiny_bert.onnx"
    quiet_export(trained_bert.checkpoint, out)
    return out


def assert_clean_error(result: Result, exit_code: int = 1) -> str:
    """A failed command: the given exit code, `Error: ...` on one line, no traceback."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1, result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1] == error_lines[0]  # the message is one line
    return error_lines[0]
