"""The BiLSTM-CRF over a frozen encoder's contextual features (`--context`), with the tiny BERT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from conftest import TAGS, WORDS, Trained, quiet_export, tiny_config, train_tiny  # noqa: E402
from tagger.artifact import load_artifact  # noqa: E402
from tagger.errors import TaggerError  # noqa: E402
from tagger.predict import Tagger  # noqa: E402
from tagger.subwords import SubwordEncoder  # noqa: E402
from tagger.train.checkpoint import load_checkpoint  # noqa: E402


def context_config(data: Path, out: Path, encoder: Path, **overrides: object) -> object:
    """A tiny BiLSTM reading layers 1 and 2 of the tiny BERT (frozen, random: the BiLSTM still overfits)."""
    options: dict[str, object] = dict(context=str(encoder), context_layers="0,1", vocab_top_k=10, max_pieces=64)
    options.update(overrides)
    return tiny_config(data, out, **options)


@pytest.fixture(scope="module")
def trained_context(session_corpus: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    out = tmp_path_factory.mktemp("trained-context")
    return train_tiny(context_config(session_corpus, out, tiny_encoder), out)


@pytest.fixture(scope="module")
def exported_context(trained_context: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exported-context") / "tiny_context.onnx"
    report = quiet_export(trained_context.checkpoint, out)
    assert report.batches > len(WORDS) + 2  # the long, windowed sentence was compared too
    return out


def test_overfits_with_the_encoder_frozen_and_cut_to_the_layers_read(trained_context: Trained, tiny_encoder: Path) -> None:
    from transformers import AutoModel

    from tagger.train.models import build_model

    checkpoint = load_checkpoint(trained_context.checkpoint)
    assert {"encoder_config", "vocab", "state_dict"} <= set(checkpoint)
    assert checkpoint["vocab"]["context"]["max_pieces"] == 64
    model, vocab = build_model(checkpoint)
    assert len(model.context.encoder.encoder.layer) == 1  # layers 0 and 1 read: the tiny BERT's second is dropped
    assert vocab.input_names[-3:] == ["input_ids", "attention_mask", "word_index"]
    # Frozen: the encoder's weights are the pretrained ones, after training.
    original = AutoModel.from_pretrained(str(tiny_encoder)).state_dict()
    trained = model.context.encoder.state_dict()
    name = "encoder.layer.0.attention.self.query.weight"
    assert torch.equal(trained[name], original[name])
    from conftest import torch_tags

    assert torch_tags(model, vocab, list(checkpoint["labels"]), WORDS) == TAGS


def test_the_context_encoder_stays_in_eval_mode(trained_context: Trained) -> None:
    from tagger.train.models import build_model

    model, _ = build_model(load_checkpoint(trained_context.checkpoint))
    model.train()
    assert model.training and not model.context.encoder.training  # no dropout on frozen features


def test_onnx_tags_equal_torch_and_gold_including_a_windowed_sentence(exported_context: Path, trained_context: Trained) -> None:
    from tagger.train.models import build_model
    from conftest import torch_tags

    tagger = Tagger(load_artifact(exported_context, device="cpu"))
    assert tagger.tag(WORDS) == TAGS
    assert tagger.artifact.header["context_layers"] == [0, 1]
    checkpoint = load_checkpoint(trained_context.checkpoint)
    model, vocab = build_model(checkpoint)
    long = [w for _ in range(20) for s in WORDS for w in s]  # 400 words, far over a 64-piece window
    batch = [long, WORDS[0], WORDS[2]]
    assert tagger.tag(batch) == torch_tags(model, vocab, list(checkpoint["labels"]), batch)


def test_batches_are_cut_by_encoder_pieces(exported_context: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tagger.subwords
    from tagger import predict

    model = Tagger(load_artifact(exported_context, device="cpu"))
    encoder = model.emit.encoder
    sentences = [WORDS[0], ["https://t.co/x7", "#hashtag"] + WORDS[1], WORDS[2] * 3]
    pieces = encoder.context_pieces(sentences)
    assert pieces == [2 + sum(map(len, encoder.context.word_pieces(s))) for s in sentences]
    assert pieces[1] > len(sentences[1]) + 2  # a link and a hashtag: several pieces a word
    alone = [model.tag([s])[0] for s in sentences]
    calls: list[int] = []  # padded pieces of each encoder call
    run = model.emit.run
    monkeypatch.setattr(model.emit, "run", lambda inputs: calls.append(inputs["input_ids"].size) or run(inputs))
    monkeypatch.setattr(tagger.subwords, "BATCH_PIECES", max(pieces))
    assert model.tag(sentences) == alone
    assert len(calls) >= 2 and max(calls) <= max(pieces)
    calls.clear()
    monkeypatch.setattr(predict, "BATCH_WORDS", 1)  # word limits do not cut a context model's batches
    monkeypatch.setattr(tagger.subwords, "BATCH_PIECES", 10_000)
    assert model.tag(sentences) == alone
    assert len(calls) == 1


@pytest.mark.parametrize("mode", ["int8", "int8-fp16"])
def test_quantised_export_of_the_encoder_and_the_lstm(trained_context: Trained, session_corpus: Path, tmp_path: Path,
                                                      mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnx

    import tagger.export.quantize

    monkeypatch.setattr(tagger.export.quantize, "FP16_MIN_VALUES", 64)  # the tiny encoder's matrices are small
    report = quiet_export(trained_context.checkpoint, tmp_path / "q.onnx", quantize=mode, data=str(session_corpus))
    graph = onnx.load(str(report.path)).graph
    ops = {node.op_type for node in graph.node}
    assert "LSTM" in ops and "DynamicQuantizeLSTM" not in ops and "MatMulInteger" not in ops  # float compute
    int8 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.INT8}
    matmul_weights = {node.input[1] for node in graph.node if node.op_type == "MatMul"}
    cast_from = {node.input[0] for node in graph.node if node.op_type == "Cast"}
    fp16 = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT16}
    if mode == "int8":
        assert not fp16 and any(name.startswith(tuple(matmul_weights)) for name in int8)
    else:  # the encoder's matrices: float16 initializers read through a Cast, not INT8
        assert matmul_weights and fp16 and fp16 <= cast_from
    assert report.quantized["mode"] == mode and report.quantized["test_f1_int8"] == 1.0  # it still tags the corpus
    assert Tagger(load_artifact(report.path, device="cpu")).tag(WORDS) == TAGS


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["Київ", "а", "Шевченко", "університетський", "!", "x"]), min_size=1, max_size=30),
                min_size=1, max_size=4), st.integers(min_value=6, max_value=20))
def test_word_index_points_at_each_words_first_piece(tiny_encoder: Path, sentences: list[list[str]], window: int) -> None:
    """Whatever the windows, each word is read at its own first piece, in a window that holds it."""
    encoder = SubwordEncoder((tiny_encoder / "tokenizer.json").read_text(encoding="utf-8"),
                             cls_id=0, sep_id=2, pad_id=1, unk_id=3, max_pieces=window)
    input_ids, attention_mask, word_index = encoder.word_positions(sentences)
    assert word_index.shape == (len(sentences), max(map(len, sentences)))
    flat_ids, flat_mask = input_ids.reshape(-1), attention_mask.reshape(-1)
    for b, words in enumerate(sentences):
        firsts = [pieces[0] for pieces in encoder.word_pieces(words)]
        positions = word_index[b, : len(words)]
        assert np.all(flat_mask[positions] == 1)
        assert flat_ids[positions].tolist() == firsts
        assert len(set(positions.tolist())) == len(words)  # no two words read at one place


def test_only_the_layers_read_are_kept(tiny_encoder: Path) -> None:
    """Layer 0 (the embeddings) alone keeps no encoder layer; the deepest layer read sets the depth."""
    from transformers import AutoModel

    from tagger.train.context import ContextEncoder

    for read, kept in (([0], 0), ([0, 1], 1), ([2], 2)):
        context = ContextEncoder(AutoModel.from_pretrained(str(tiny_encoder)), read)
        assert len(context.encoder.encoder.layer) == context.encoder.config.num_hidden_layers == kept, read


def test_bad_context_layers_are_a_clear_error(session_corpus: Path, tiny_encoder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="context_layers"):
        context_config(session_corpus, tmp_path, tiny_encoder, context_layers="four")
    with pytest.raises(TaggerError, match="--context-layers asks for layer 5 of an encoder with 2 layers; pass at most 2"):
        train_tiny(context_config(session_corpus, tmp_path, tiny_encoder, context_layers="1,5", epochs=1), tmp_path)
