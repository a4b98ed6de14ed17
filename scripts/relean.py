"""Recover a BERT tagger's checkpoint from its ONNX file, re-export it as a lean graph, and measure.

    python scripts/relean.py recover assets/uk_bert.onnx -o runs/recovered/uk_bert.pth --data ../shared/data/ner-uk
    python scripts/relean.py recover assets/en_bert.onnx -o runs/recovered/en_bert.pth --data ../shared/data/wnut17 --lang en
    python scripts/relean.py lean runs/recovered/uk_bert.pth -o runs/lean/uk_bert.onnx [--quantize int8 --data FOLDER]
    python scripts/relean.py measure assets/uk_bert.onnx runs/relean/*.onnx --data ../shared/data/ner-uk \
        --words 8000 --threads 2 [--f1 FILE ...] [--json runs/relean/measure.json]

`recover`: the float32 checkpoints of the shipped BERT taggers are lost, but each file holds its
weights: INT8 with per-channel scales (widened by Cast+Mul) or per-tensor DequantizeLinear, and the
SmoothQuant inverse scales before each FFN output projection. The torch `BertTagger` is rebuilt from
exactly what the graph computes with (int8 * scale; the smoothing folded into the weight's rows),
its `BertConfig` read off the shapes (heads: e5-small's 12, which parity proves), the labels,
tokenizer and CRF from the header, and the header's provenance carried into a plain-data checkpoint
(`train/checkpoint.py`) that `tagger export` re-exports. It then proves itself: torch's piece scores
equal the file's ONNX scores (max |diff| printed) and the tags are identical on validation sentences.

`lean`: `tagger export` itself, which now writes the fused graph this script first proved (export/fusion.py:
eager attention scaled by a Div, the additive mask built once, ONNX Runtime's BERT fusion, refused unless
one Attention per layer; `--quantize int8`: export/portable.py `int8_weights`, the portable INT8 form),
printing the op counts of the file it wrote.

`measure`: for each file, in one process, alternating the order in each round: words/s of
`Tagger.tag` and of `session.run` alone on the same ner-uk documents (document context), entity
differences against the first file, and with `--f1` the test F1 of those files, as `tagger evaluate`
gives it and with `--by-document`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADS = 12  # e5-small's attention heads: not in any weight's shape; a wrong count fails the parity check


# ---------------------------------------------------------------- recover


def graph_weights(model: Any) -> dict[str, np.ndarray]:
    """The value of every constant the graph computes with: initializers, and the outputs of Cast+Mul
    widenings of initializers, in float32 as ORT folds them."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:  # topological order: a widening's Cast comes before its Mul
        if node.op_type == "Cast" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].astype(np.float32)
        elif node.op_type == "Mul" and all(name in values for name in node.input):
            values[node.output[0]] = (values[node.input[0]] * values[node.input[1]]).astype(np.float32)
    return values


def torch_weights(model: Any) -> dict[str, np.ndarray]:
    """The graph's weights under the torch parameter names of `BertTagger`.

    Initializers that kept their torch names (LayerNorms, biases) are taken as they are. A Linear's
    weight is found through its MatMul, whose Add reads the named bias; ONNX stores it (in, out),
    torch (out, in). A SmoothQuant Mul(x, inverse) before the MatMul is folded into the weight's rows.
    An embedding table is the DequantizeLinear output its Gather reads.
    """
    values = graph_weights(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {name: values[name] for name in (i.name for i in model.graph.initializer)
             if name.startswith(("encoder.", "scores.")) and not name.endswith(("_quantized", "_scale", "_zero_point"))}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in values:
            adds = [c for c in consumers.get(node.output[0], []) if c.op_type == "Add"]
            bias = next((name for add in adds for name in add.input if name.endswith(".bias")), None)
            if bias is None:
                raise ValueError(f"{node.name}: no Add with a named bias after this MatMul")
            weight = values[node.input[1]]  # (in, out)
            smooth = producers.get(node.input[0])
            if smooth is not None and smooth.op_type == "Mul" and smooth.input[1].endswith("_smooth_inverse"):
                weight = values[smooth.input[1]][:, None] * weight  # x * inv @ W == x @ (inv[:, None] * W)
            state[bias.removesuffix(".bias") + ".weight"] = np.ascontiguousarray(weight.T)
        elif node.op_type == "Gather" and node.input[0].endswith("_quantized") and node.input[0] in values:
            # quantize_dynamic gathers the INT8 rows, then dequantises them (per tensor): the table's
            # float value is its DequantizeLinear applied to every row.
            (dequantize,) = [c for c in consumers[node.output[0]] if c.op_type == "DequantizeLinear"]
            q, scale = values[node.input[0]], values[dequantize.input[1]]
            zero = values[dequantize.input[2]] if len(dequantize.input) > 2 and dequantize.input[2] else 0
            table = (q.astype(np.int32) - np.int32(zero)).astype(np.float32) * scale
            state[node.input[0].removesuffix("_quantized")] = table.astype(np.float32)
    return state


def bert_config_of(state: dict[str, np.ndarray], model: Any, pad_id: int) -> Any:
    """The encoder's BertConfig, read off the weights' shapes (heads: HEADS) and the LayerNorm epsilon."""
    from onnx import helper
    from transformers import BertConfig

    word = state["encoder.embeddings.word_embeddings.weight"]
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("encoder.encoder.layer."))
    eps = next(helper.get_attribute_value(a) for n in model.graph.node if n.op_type == "LayerNormalization"
               for a in n.attribute if a.name == "epsilon")
    has_erf = any(n.op_type == "Erf" for n in model.graph.node)
    return BertConfig(
        vocab_size=word.shape[0], hidden_size=word.shape[1], num_hidden_layers=layers, num_attention_heads=HEADS,
        intermediate_size=state["encoder.encoder.layer.0.intermediate.dense.bias"].shape[0],
        hidden_act="gelu" if has_erf else "gelu_new",
        max_position_embeddings=state["encoder.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["encoder.embeddings.token_type_embeddings.weight"].shape[0],
        layer_norm_eps=float(eps), pad_token_id=pad_id, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )


def recover(onnx_path: Path, examples: list[list[str]]) -> dict[str, Any]:
    """A plain-data BERT checkpoint (train/checkpoint.py's BertCheckpoint) rebuilt from an exported file."""
    import onnx
    import torch

    from tagger.artifact import load_artifact
    from tagger.subwords import SubwordEncoder
    from tagger.train.bert import config_json
    from tagger.train.checkpoint import CHECKPOINT_VERSION

    header = load_artifact(onnx_path, device="cpu").header
    if header["arch"] != "bert":
        raise SystemExit(f"{onnx_path}: a {header['arch']} model; recover reads BERT taggers only")
    model = onnx.load(str(onnx_path))
    if any(node.op_type == "Attention" for node in model.graph.node):
        raise SystemExit(f"{onnx_path}: a fused graph (ONNX Runtime's Attention kernels); recover reads the"
                         " unfused graphs exported before 2026-11-30 (its fused weights are packed)")
    state = torch_weights(model)
    subwords = SubwordEncoder.from_json(header["subwords"])
    config = bert_config_of(state, model, subwords.pad_id)
    crf = header.get("crf")
    if crf:
        state.update({f"crf.{k}": np.asarray(crf[k], np.float32) for k in ("transitions", "start", "end")})
    provenance = header["provenance"]
    return {
        "format_version": CHECKPOINT_VERSION,
        "arch": "bert",
        "config": dict(provenance["config"]),
        "labels": list(header["labels"]),
        "vocab": subwords.to_json(),
        "state_dict": {k: torch.from_numpy(np.array(v, np.float32)) for k, v in sorted(state.items())},
        "encoder_config": config_json(config),
        "encoder": str(header.get("encoder", "")),
        "examples": examples,
        "data": {**provenance.get("data", {}),
                 "weights": f"recovered from {onnx_path.name} exported {provenance.get('exported_at', '?')}: its INT8"
                            " weights, dequantised; the float32 checkpoint was lost"},
        "metrics": dict(provenance.get("metrics", {})),
        "created": str(provenance.get("trained_at", "")),
        "git_sha": str(provenance.get("train_git_sha", "")),
        "torch_version": str(provenance.get("torch_version", "")),
    }


def check_recovered(checkpoint: dict[str, Any], onnx_path: Path, sentences: list[list[str]]) -> dict[str, Any]:
    """Torch's piece scores and tags of the rebuilt model against the file's ONNX Runtime ones."""
    from tagger.artifact import load_artifact
    from tagger.predict import Tagger, tag_with
    from tagger.train.models import build_model
    from tagger.train.scorers import bert_torch_emitter, crf_decoder, torch_run

    model, subwords = build_model(checkpoint)  # type: ignore[arg-type]
    missing = set(model.state_dict()) - set(checkpoint["state_dict"])
    artifact = load_artifact(onnx_path, device="cpu")
    max_diff = 0.0
    for start in range(0, len(sentences), 8):
        windows, pieces = subwords.windows(sentences[start:start + 8])
        input_ids, attention_mask, _ = subwords.batch_inputs(windows, pieces)
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        expected = torch_run(model, inputs)
        (actual,) = artifact.session.run([artifact.header["output"]], inputs)
        max_diff = max(max_diff, float(np.abs(expected - actual)[attention_mask == 1].max()))
    emit = bert_torch_emitter(model, subwords, len(checkpoint["labels"]))
    torch_tags = tag_with(emit, crf_decoder(model, checkpoint["labels"]), checkpoint["labels"], sentences)
    onnx_tags = Tagger(artifact).tag(sentences)
    return {"sentences": len(sentences), "max_diff": max_diff, "tags_identical": torch_tags == onnx_tags,
            "missing_keys": sorted(missing)}


# ---------------------------------------------------------------- lean export


def export_lean(checkpoint_path: Path, out: Path, quantize: str | None, data: Path | None) -> dict[str, Any]:
    """`tagger export` (export/onnx.py: fused BERT graph, parity-checked; export/quantize.py: portable INT8),
    with the op counts of the file it wrote."""
    import onnx

    from tagger.export.onnx import export_checkpoint

    report = export_checkpoint(checkpoint_path, out, quantize, str(data) if data else None)
    ops = Counter(n.op_type for n in onnx.load(str(out)).graph.node)
    return {"file": str(out), "mb": round(report.size_bytes / 1e6, 1), "max_diff": report.max_diff,
            "fused": report.fused, "quantization": report.quantized,
            "ops": {op: ops.get(op, 0) for op in ("Attention", "SkipLayerNormalization", "EmbedLayerNormalization",
                                                  "BiasGelu", "LayerNormalization", "Softmax", "Where", "IsNaN",
                                                  "MatMulInteger", "QAttention")}}


# ---------------------------------------------------------------- measure


def documents(folder: Path, split: str, words: int) -> tuple[list[list[str]], list[str]]:
    """The sentences and document ids of the first whole documents of a split holding about `words` words."""
    from tagger.corpus import document_ids, read_local_split

    gold = read_local_split(folder, "uk", split)
    ids = document_ids(folder, split, gold)
    sentences: list[list[str]] = []
    runs: list[str] = []
    total = 0
    for sentence, doc in zip(gold, ids):
        if total >= words and doc != runs[-1]:
            break
        sentences.append(list(sentence.words))
        runs.append(doc)
        total += len(sentence.words)
    return sentences, runs


def entities(tags: list[list[str]]) -> set[tuple[int, int, int, str]]:
    """(sentence, start, end, label) of every entity."""
    from tagger.scheme import tags_to_spans

    return {(k, s.start, s.end, s.label) for k, t in enumerate(tags) for s in tags_to_spans(t)}


def test_f1(path: Path, folder: Path, threads: int) -> str:
    """Test F1 as `tagger evaluate --data FOLDER` gives it (the split read as one text, as training and the
    header's figure read it) / with `--by-document` (each document alone, as `tag` reads its inputs)."""
    from tagger.artifact import load_artifact
    from tagger.corpus import document_ids, read_local_split
    from tagger.evaluation import evaluate
    from tagger.predict import Tagger

    gold = read_local_split(folder, "uk", "test")
    tagger = Tagger(load_artifact(path, device="cpu", threads=threads))
    whole = evaluate(tagger, gold).micro.f1
    by_document = evaluate(tagger, gold, documents=document_ids(folder, "test", gold)).micro.f1
    return f"{whole:.4f} / {by_document:.4f}"


def measure(paths: list[Path], folder: Path, words: int, threads: int, rounds: int) -> list[dict[str, Any]]:
    """Words/s of `Tagger.tag` and of `session.run` alone for each file on the same documents,
    alternating the order each round; tags and entity differences against the first file."""
    from tagger.artifact import load_artifact
    from tagger.predict import Tagger

    sentences, runs = documents(folder, "validation", words)
    total = sum(map(len, sentences))
    taggers = [Tagger(load_artifact(p, device="cpu", threads=threads)) for p in paths]
    feeds = []
    for tagger in taggers:  # the encoder calls `tag` makes, captured once for session.run alone
        calls: list[tuple[np.ndarray, np.ndarray]] = []

        def capture(input_ids: np.ndarray, attention_mask: np.ndarray, calls: list[Any] = calls) -> np.ndarray:
            calls.append((input_ids, attention_mask))
            return np.zeros((*input_ids.shape, len(tagger.labels)), np.float32)

        tagger.emit.encoder.emissions(sentences, capture, len(tagger.labels), runs)  # type: ignore[union-attr]
        feeds.append(calls)
    tags = [t.tag(sentences[:20], runs[:20]) for t in taggers]  # warm-up
    tag_s: list[list[float]] = [[] for _ in paths]
    run_s: list[list[float]] = [[] for _ in paths]
    for r in range(rounds):
        order = list(range(len(paths))) if r % 2 == 0 else list(range(len(paths)))[::-1]
        for k in order:
            session, output = taggers[k].artifact.session, taggers[k].artifact.header["output"]
            start = time.perf_counter()
            for input_ids, attention_mask in feeds[k]:
                session.run([output], {"input_ids": input_ids, "attention_mask": attention_mask})
            run_s[k].append(time.perf_counter() - start)
            start = time.perf_counter()
            tags[k] = taggers[k].tag(sentences, runs)
            tag_s[k].append(time.perf_counter() - start)
    reference = entities(tags[0])
    rows = []
    for k, path in enumerate(paths):
        found = entities(tags[k])
        rows.append({"file": str(path), "mb": round(path.stat().st_size / 1e6, 1),
                     "tag_words_s": round(total / float(np.median(tag_s[k]))),
                     "run_words_s": round(total / float(np.median(run_s[k]))),
                     "tag_s": [round(s, 2) for s in tag_s[k]], "run_s": [round(s, 2) for s in run_s[k]],
                     "entities": len(found), "entities_differing": len(found ^ reference),
                     "tags_identical": tags[k] == tags[0]})
    print(f"{total} words in {len(sentences)} sentences, {len(set(runs))} validation documents; {threads} threads,"
          f" {rounds} rounds (median)", file=sys.stderr)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The measurements as a Markdown table, speed ratios to the first file."""
    lines = ["| file | MB | Tagger.tag words/s | x | session.run words/s | x | entities | differing | test F1 (split / by document) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = rows[0]
    for row in rows:
        lines.append(f"| {Path(row['file']).name} | {row['mb']} | {row['tag_words_s']} |"
                     f" {row['tag_words_s'] / base['tag_words_s']:.2f} | {row['run_words_s']} |"
                     f" {row['run_words_s'] / base['run_words_s']:.2f} | {row['entities']} |"
                     f" {row['entities_differing']} | {row.get('test_f1', '')} |")
    return "\n".join(lines)


def main() -> None:
    """Parse the command line and run one step."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    rec = steps.add_parser("recover", help="rebuild a BERT checkpoint from an exported file")
    rec.add_argument("onnx", type=Path)
    rec.add_argument("-o", "--out", type=Path, required=True)
    rec.add_argument("--data", type=Path, required=True, help="corpus folder: validation sentences to prove the rebuild on")
    rec.add_argument("--check", type=int, default=64, help="validation sentences the rebuild is proven on")
    rec.add_argument("--lang", default="uk", help="the corpus's language (uk: ner-uk, en: wnut17)")
    lean = steps.add_parser("lean", help="tagger export of a checkpoint, with the op counts of the file")
    lean.add_argument("checkpoint", type=Path)
    lean.add_argument("-o", "--out", type=Path, required=True)
    lean.add_argument("--quantize", choices=["int8", "int8-fp16"], default=None)
    lean.add_argument("--data", type=Path, default=None, help="corpus folder for --quantize's test F1")
    meas = steps.add_parser("measure", help="speed, entity differences and test F1, side by side")
    meas.add_argument("files", type=Path, nargs="+", help="the first is the reference for entity differences")
    meas.add_argument("--data", type=Path, required=True)
    meas.add_argument("--words", type=int, default=8000)
    meas.add_argument("--threads", type=int, default=2)
    meas.add_argument("--rounds", type=int, default=3)
    meas.add_argument("--f1", type=Path, nargs="*", default=[], help="files whose test F1 to measure too")
    meas.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    if args.step == "recover":
        from tagger.corpus import read_local_split
        from tagger.train.checkpoint import save_checkpoint

        validation = [list(s.words) for s in read_local_split(args.data, args.lang, "validation")]
        checkpoint = recover(args.onnx, validation[:8])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(args.out, checkpoint)  # type: ignore[arg-type]
        print(json.dumps(check_recovered(checkpoint, args.onnx, validation[: args.check])))
    elif args.step == "lean":
        print(json.dumps(export_lean(args.checkpoint, args.out, args.quantize, args.data), indent=1))
    else:
        rows = measure(args.files, args.data, args.words, args.threads, args.rounds)
        for row in rows:
            if Path(row["file"]) in args.f1:
                row["test_f1"] = test_f1(Path(row["file"]), args.data, args.threads)
        print(table(rows))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
