"""scripts/vocab_trim.py's probe rests on two things: the pieces it appends make the words segment
as under the whole vocabulary, and appending rows leaves every old row of the INT8 table as it was."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from vocab_trim import appended_rows, compare, extended_spec, segmentations

WHOLE = [("<unk>", 0.0), ("▁", -3.0), ("a", -2.0), ("b", -2.0), ("c", -2.0), ("▁a", -1.0), ("▁ab", -1.5),
         ("bc", -1.8), ("▁c", -1.2)]


def unigram(pieces: list[tuple[str, float]]) -> Tokenizer:
    tokenizer = Tokenizer(models.Unigram(pieces, 0, False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    return tokenizer


def test_appended_pieces_segment_the_words_as_the_whole_vocabulary() -> None:
    whole = unigram(WHOLE)
    trimmed = unigram([p for p in WHOLE if p[0] not in ("▁ab", "bc")])
    words = ["ab", "abc", "c", "ab", "ca"]  # "ca": the whole vocabulary's "▁c" "a" is in the trimmed one
    assert segmentations(trimmed, ["ab"]) == [("▁a", "b")]  # the trim changed it
    assert compare(trimmed, whole, words)["tokens_differ"] == 0.6
    spec, new = extended_spec(json.loads(trimmed.to_str()), whole, words)
    assert new == ["▁ab", "bc"]  # in the whole vocabulary's order; "abc" is "▁a" "bc" there
    extended = Tokenizer.from_str(json.dumps(spec))
    assert segmentations(extended, words) == segmentations(whole, words)
    assert compare(extended, whole, words)["tokens_differ"] == 0.0
    assert spec["model"]["vocab"][: len(WHOLE) - 2] == [list(p) for p in WHOLE if p[0] not in ("▁ab", "bc")]


def test_appended_rows_keep_the_old_ones_and_dequantize_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    int8 = rng.integers(-127, 128, size=(5, 8), dtype=np.int8)
    scale = rng.random((5, 1), dtype=np.float32)
    rows = rng.standard_normal((3, 8)).astype(np.float32)
    new_int8, new_scale = appended_rows(int8, scale, rows)
    assert new_int8.dtype == np.int8 and new_scale.dtype == np.float32 and new_int8.shape == (8, 8)
    assert np.array_equal(new_int8[:5], int8) and np.array_equal(new_scale[:5], scale)
    assert np.abs(new_int8[5:]).max(axis=1).tolist() == [127, 127, 127]
    assert np.all(np.abs(new_int8[5:] * new_scale[5:] - rows) <= new_scale[5:] / 2 + 1e-7)
