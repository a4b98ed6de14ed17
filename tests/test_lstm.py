"""The BiLSTM-CRF training side: overfitting, the CRF loss, padding invariance, checkpoints, config."""

from __future__ import annotations

import dataclasses
import itertools
import json
import pickle
from pathlib import Path

import pytest
import torch

from conftest import LABELS, TAGS, WORDS, Trained, tiny_config, torch_tags, train_tiny
from tagger.conll import Sentence
from tagger.errors import ArtifactError
from tagger.features import LstmEncoder
from tagger.train.checkpoint import CHECKPOINT_REQUIRED, CHECKPOINT_VERSION, load_checkpoint, save_checkpoint
from tagger.train.config import TrainConfig
from tagger.train.crf import CRF
from tagger.train.lstm import BiLSTMTagger, CharCNN, reverse_padded
from tagger.train.models import build_model
from tagger.train.vocab import build_vocab
from tagger.vocab import LstmVocab

CPU = torch.device("cpu")


# --- the keystone ------------------------------------------------------------------------------


def test_char_cnn_is_the_convolution_max_pooled_over_real_characters() -> None:
    # CharCNN computes its Conv1d as one matrix product (faster in ONNX Runtime); the reference is the
    # plain convolution with padding characters masked out of the max.
    torch.manual_seed(0)
    cnn = CharCNN(num_chars=20, char_dim=5, filters=7)
    char_ids = torch.randint(1, 20, (3, 4, 6))
    char_ids[0, 1, 3:] = 0  # a short word
    char_ids[1, 2:] = 0  # padding words
    char_ids[2, 0, 1:] = 0  # a one-character word
    flat = char_ids.reshape(12, 6)
    conv = torch.nn.functional.conv1d(cnn.embed(flat).transpose(1, 2), cnn.conv.weight, cnn.conv.bias, padding=1)
    expected = conv.masked_fill((flat == 0)[:, None, :], float("-inf")).amax(dim=2)
    expected = torch.where((flat[:, :1] != 0), expected, torch.zeros_like(expected)).reshape(3, 4, 7)
    got = cnn(char_ids)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert (got[1, 2:] == 0).all()


def test_overfits_the_inline_sentences_exactly(trained: Trained) -> None:
    """Train, reload the best checkpoint from disk, and predict exactly the gold tags."""
    checkpoint = load_checkpoint(trained.checkpoint)
    model, vocab = build_model(checkpoint)
    sentences = [Sentence(list(w), list(t)) for w, t in zip(WORDS, TAGS)]
    assert torch_tags(model, vocab, list(checkpoint["labels"]), [s.words for s in sentences]) == TAGS
    assert trained.result.validation_f1 == 1.0
    assert trained.result.test is not None and trained.result.test.micro.f1 == 1.0


def test_training_writes_checkpoint_curves_metrics_and_config(trained: Trained) -> None:
    stem = trained.out / "best_lstm"
    assert trained.checkpoint == trained.out / "best_lstm.pth"
    assert trained.checkpoint.is_file()
    png = stem.with_name("best_lstm_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    metrics = json.loads(stem.with_suffix(".metrics.json").read_text(encoding="utf-8"))
    assert metrics["validation"]["micro"]["f1"] == 1.0
    assert metrics["test"]["micro"]["f1"] == 1.0
    assert 1 <= metrics["epoch"] <= trained.config.epochs
    assert len(metrics["history"]["loss"]) == len(metrics["history"]["val_f1"]) >= metrics["epoch"]
    config = json.loads(stem.with_suffix(".config.json").read_text(encoding="utf-8"))
    assert config == trained.config.to_dict()
    assert TrainConfig.from_dict(config) == trained.config
    # Atomic writes leave no temporary files behind.
    assert not [p.name for p in trained.out.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


@pytest.mark.parametrize(("on_validation", "keep_last"), [(False, False), (True, False), (False, True)],
                         ids=["held-out", "train-on-validation", "keep-last"])
def test_train_on_validation_runs_every_epoch_and_keeps_the_last(
    session_corpus: Path, tmp_path: Path, on_validation: bool, keep_last: bool
) -> None:
    """A learning rate too small to change any tag keeps validation F1 flat: patience 1 stops a
    held-out run at epoch 2 with epoch 1 kept; trained on validation, or held out with --keep-last,
    all epochs run and the last is kept."""
    config = tiny_config(session_corpus, tmp_path, epochs=3, patience=1, lr=1e-12,
                         train_on_validation=on_validation, keep_last=keep_last)
    run = train_tiny(config, tmp_path)
    metrics = json.loads((tmp_path / "best_lstm.metrics.json").read_text(encoding="utf-8"))
    every = on_validation or keep_last
    assert (run.result.best_epoch, len(metrics["history"]["val_f1"])) == ((3, 3) if every else (1, 2))
    data = load_checkpoint(run.checkpoint)["data"]
    sizes = data["sentences"]
    assert sizes["train"] == len(WORDS) + (sizes["validation"] if on_validation else 0)
    assert data["validation_held_out"] is not on_validation
    assert ("(seen in training)" in run.log) is on_validation
    assert ("last epoch 3:" in run.log) is every


def test_train_on_validation_is_a_flag_of_the_cli() -> None:
    from click.testing import CliRunner

    from tagger.train.cli import train

    result = CliRunner().invoke(train, ["--help"])
    assert result.exit_code == 0
    for flag in ("--train-on-validation", "--keep-last"):
        assert f"{flag} " in result.output and f"{flag} BOOLEAN" not in result.output


# --- the CRF loss ------------------------------------------------------------------------------


def brute_force_nll(crf: CRF, emissions: torch.Tensor, label_ids: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """Mean over sentences of log Z - score(gold), Z summed over every label path explicitly."""
    num_labels = emissions.shape[-1]
    trans, start, end = crf.transitions, crf.start, crf.end

    def path_score(b: int, path: tuple[int, ...]) -> torch.Tensor:
        s = start[path[0]] + end[path[-1]]
        for t, label in enumerate(path):
            s = s + emissions[b, t, label]
            if t:
                s = s + trans[path[t - 1], label]
        return s

    losses = []
    for b, length in enumerate(lengths):
        scores = torch.stack([path_score(b, p) for p in itertools.product(range(num_labels), repeat=length)])
        gold = path_score(b, tuple(int(i) for i in label_ids[b, :length]))
        losses.append(torch.logsumexp(scores, 0) - gold)
    return torch.stack(losses).mean()


def test_crf_nll_equals_brute_force_enumeration() -> None:
    torch.manual_seed(0)
    crf = CRF(3).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    lengths = [4, 2]
    emissions = torch.randn(2, 4, 3, dtype=torch.float64)
    label_ids = torch.tensor([[2, 0, 1, 1], [1, 2, 0, 0]])
    mask = torch.arange(4)[None, :] < torch.tensor(lengths)[:, None]
    expected = brute_force_nll(crf, emissions, label_ids, lengths)
    got = crf.nll(emissions, label_ids, mask)
    assert torch.allclose(got, expected, atol=1e-9), (got, expected)
    # Padding may hold anything: scores and labels past a length change nothing.
    noisy = emissions.clone()
    noisy[1, 2:] = 1e3 * torch.randn(2, 3, dtype=torch.float64)
    wild_labels = label_ids.clone()
    wild_labels[1, 2:] = 2
    assert torch.allclose(crf.nll(noisy, wild_labels, mask), expected, atol=1e-9)


def test_crf_nll_is_positive_and_gradients_reach_every_parameter() -> None:
    torch.manual_seed(1)
    crf = CRF(3)
    emissions = torch.randn(2, 3, 3, requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    loss = crf.nll(emissions, torch.tensor([[0, 1, 2], [2, 0, 0]]), mask)
    assert loss.item() > 0  # a probability below 1
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in crf.parameters())
    assert emissions.grad[1, 1:].abs().sum() == 0  # padding gets no gradient


# --- padding -----------------------------------------------------------------------------------


def test_reverse_padded_reverses_within_lengths() -> None:
    x = torch.arange(10).reshape(2, 5)[:, :, None]  # (batch, seq_len, 1)
    got = reverse_padded(x, torch.tensor([5, 3]))[:, :, 0]
    assert got.tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]
    # Its own inverse, and a length of 1 changes nothing.
    assert torch.equal(reverse_padded(reverse_padded(x, torch.tensor([5, 3])), torch.tensor([5, 3])), x)
    assert torch.equal(reverse_padded(x, torch.tensor([1, 1])), x)


def random_model(layers: int = 2) -> tuple[BiLSTMTagger, LstmVocab]:
    """An untrained model with non-trivial weights (padding invariance is a property of the code)."""
    torch.manual_seed(7)
    config = TrainConfig(hidden=8, layers=layers, word_dim=8, case_dim=4, char_dim=6, char_filters=8,
                         dropout=0.0, word_dropout=0.0)
    vocab = build_vocab(WORDS, 1, 20)
    model = BiLSTMTagger(config, len(vocab.words), len(vocab.chars), len(LABELS))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
        for module in model.modules():  # as training keeps them: padding rows stay zero
            if isinstance(module, torch.nn.Embedding) and module.padding_idx is not None:
                module.weight[module.padding_idx] = 0.0
    return model.eval(), vocab


def emissions_of(model: BiLSTMTagger, vocab: LstmVocab, sentences: list[list[str]]) -> torch.Tensor:
    """The model's emission scores of a padded batch."""
    inputs = {k: torch.from_numpy(v) for k, v in LstmEncoder(vocab).encode(sentences).items()}
    with torch.no_grad():
        return model(**inputs)  # (batch, seq_len, num_labels)


def test_batched_emissions_equal_one_by_one() -> None:
    """Padding (shorter sentences, shorter words) changes no score: char-CNN masking, reversed LSTM."""
    model, vocab = random_model(layers=2)
    sentences = [
        ["Ні"],
        ["Київський", "національний", "університет", "імені", "Шевченка", "ok", "Києві", "."],
        ["Тарас", "Шевченко", "невідомесловодуждовге"],  # an unknown word longer than max_word_chars
        ["я", "у", "в"],
    ]
    batched = emissions_of(model, vocab, sentences)
    assert batched.shape == (4, 8, len(LABELS))
    for b, words in enumerate(sentences):
        alone = emissions_of(model, vocab, [words])[0]
        assert torch.allclose(batched[b, : len(words)], alone, atol=1e-5), words
    # And the scores do depend on the context, so the comparison above means something.
    assert not torch.allclose(emissions_of(model, vocab, [["Тарас", "Шевченко"]])[0, 0],
                              emissions_of(model, vocab, [["Тарас", "Київ"]])[0, 0], atol=1e-4)


def test_backward_direction_sees_the_words_after() -> None:
    """The first word's scores change when the last word changes (the backward LSTM reads it)."""
    model, vocab = random_model(layers=1)
    a = emissions_of(model, vocab, [["Тарас", "Шевченко", "народився"]])[0, 0]
    b = emissions_of(model, vocab, [["Тарас", "Шевченко", "Київ"]])[0, 0]
    assert not torch.allclose(a, b, atol=1e-4)


def test_a_real_word_is_never_encoded_as_padding() -> None:
    vocab = build_vocab(WORDS, 1, 20)
    word_ids = LstmEncoder(vocab).encode([["Тарас", "<pad>", "<PAD>", "<unk>"]])["word_ids"]
    assert (word_ids != 0).all(), word_ids


# --- checkpoints -------------------------------------------------------------------------------


def test_trained_checkpoint_is_plain_data(trained: Trained) -> None:
    checkpoint = torch.load(trained.checkpoint, map_location="cpu", weights_only=True)
    assert set(CHECKPOINT_REQUIRED) <= set(checkpoint)
    assert checkpoint["format_version"] == CHECKPOINT_VERSION
    assert checkpoint["labels"] == LABELS
    assert checkpoint["config"] == trained.config.to_dict()
    assert all(isinstance(v, torch.Tensor) for v in checkpoint["state_dict"].values())
    assert checkpoint["metrics"]["validation"]["micro"]["f1"] == 1.0


def test_checkpoint_round_trip_rebuilds_an_identical_model(tmp_path: Path) -> None:
    model, vocab = random_model(layers=2)
    config = TrainConfig(hidden=8, layers=2, word_dim=8, case_dim=4, char_dim=6, char_filters=8,
                         dropout=0.0, word_dropout=0.0)
    path = tmp_path / "model.pth"
    save_checkpoint(path, {
        "format_version": CHECKPOINT_VERSION, "arch": "lstm", "config": config.to_dict(), "labels": LABELS,
        "vocab": vocab.to_json(), "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
    })
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]  # no temporary file left
    torch.load(path, weights_only=True)  # plain data: the safe loader accepts it
    rebuilt, rebuilt_vocab = build_model(load_checkpoint(path))
    assert rebuilt_vocab == vocab
    batch = [["Тарас", "Шевченко"], ["Київ", "невідоме", "."]]
    assert torch.equal(emissions_of(rebuilt, rebuilt_vocab, batch), emissions_of(model, vocab, batch))


class Payload:
    """A pickled object whose unpickling would run code (writes a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.write_text, (self.marker, "payload ran"))


class Innocent:
    """A custom class instance: not plain data either."""

    def __init__(self) -> None:
        self.value = 1


def plain_checkpoint(extra: object) -> dict[str, object]:
    """A checkpoint that is valid but for one smuggled object."""
    return {"format_version": CHECKPOINT_VERSION, "arch": "lstm", "config": {}, "labels": LABELS,
            "vocab": {}, "state_dict": {"w": torch.zeros(2)}, "extra": extra}


@pytest.mark.parametrize("kind", ["reduce", "instance", "raw-pickle"])
def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pth"
    if kind == "reduce":
        torch.save(plain_checkpoint(Payload(marker)), path)
    elif kind == "instance":
        torch.save(plain_checkpoint(Innocent()), path)
    else:  # a bare pickle file, not torch's zip format
        with path.open("wb") as handle:
            pickle.dump(plain_checkpoint(Payload(marker)), handle, protocol=2)
    with pytest.raises(ArtifactError) as err:
        load_checkpoint(path)
    assert str(err.value).startswith(f"{path}: refused")
    assert not marker.exists(), "the pickle payload ran"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such checkpoint"),
        (b"", "not a readable checkpoint"),
        (b'{"format_version": 1}\n', "not a readable checkpoint|: refused"),
        (b"\x89PNG\r\n\x1a\n" + bytes(40), "not a readable checkpoint|: refused"),
        ({"format_version": 1, "labels": []}, "not a tagger checkpoint"),
        ([1, 2, 3], "not a tagger checkpoint"),
        ({**plain_checkpoint(None), "format_version": 99}, "newer"),
    ],
)
def test_bad_checkpoints_raise_artifact_error(tmp_path: Path, content: object, match: str) -> None:
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(ArtifactError, match=match):
        load_checkpoint(path)


def test_a_text_file_as_checkpoint_raises_artifact_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint at all", encoding="utf-8")
    with pytest.raises(ArtifactError, match="notes.pth"):
        load_checkpoint(path)


def test_truncated_checkpoint_raises_artifact_error(trained: Trained, tmp_path: Path) -> None:
    data = trained.checkpoint.read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="not a readable checkpoint"):
        load_checkpoint(path)


# --- TrainConfig -------------------------------------------------------------------------------


def test_config_round_trips_through_plain_data() -> None:
    config = TrainConfig(hidden=8, lr=0.5, data="somewhere")
    data = config.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert TrainConfig.from_dict(data) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.hidden = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        TrainConfig("lstm")  # type: ignore[misc]  # keyword-only


def test_config_from_dict_names_unknown_keys() -> None:
    data = {**TrainConfig().to_dict(), "hiden": 8, "learning_rate": 1.0}
    with pytest.raises(ValueError, match="hiden") as err:
        TrainConfig.from_dict(data)
    assert "learning_rate" in str(err.value)


@pytest.mark.parametrize(
    "bad",
    [
        {"arch": "transformer"}, {"lang": "de"}, {"device": "tpu"}, {"epochs": 0}, {"batch_size": 0},
        {"hidden": 0}, {"layers": 0}, {"word_dim": 0}, {"char_filters": 0}, {"dropout": 1.0},
        {"dropout": -0.1}, {"word_dropout": 1.5},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, object]) -> None:
    (name,) = bad
    with pytest.raises(ValueError, match=name.split("_")[0]):
        TrainConfig(**bad)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"lr": -1.0}, id="lr<0: Adam raises a bare ValueError mid-run (traceback in the CLI)"),
        pytest.param({"lr": 0.0}, id="lr=0: trains nothing, silently"),
        pytest.param({"char_dim": 0}, id="char_dim=0: RuntimeError deep in the first forward pass"),
        pytest.param({"clip": -1.0}, id="clip<0: clip_grad_norm_ flips the gradients (ascent), silently"),
        pytest.param({"max_train_sentences": -1}, id="max_train_sentences<0: drops the last sentence, silently"),
    ],
)
def test_config_rejects_values_that_break_training(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**bad)
