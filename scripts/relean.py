"""Recover a BERT tagger's checkpoint from its ONNX file, re-export it as a lean graph, and measure.

    python scripts/relean.py recover assets/uk_bert.onnx -o runs/recovered/uk_bert.pth --data ../shared/data/ner-uk
    python scripts/relean.py lean runs/recovered/uk_bert.pth -o runs/relean/lean.onnx --int8 runs/relean/lean_int8.onnx
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

`lean`: exports the checkpoint with eager attention (scaled by a Div, see `lean_attention`) and the
additive mask built once ((1 - mask) * -10000): the form ONNX Runtime's BERT fusion recognises; parity-checked against torch
like `tagger export`, then runs `onnxruntime.transformers.optimizer.optimize_model(model_type="bert")`
and prints which fused ops it wrote. `--int8` also writes it in the portable INT8 form: every large
float weight (the MatMuls', Attention's packed QKV, EmbedLayerNormalization's tables) stored INT8,
symmetric per output channel, behind a Cast+Mul that ONNX Runtime folds at session start; no integer
product, which `export/portable.py: saturation_risks` confirms.

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
MASK_MIN = -10000.0  # the additive mask of padded keys: exp(-1e4) is 0 in float32, as softmax over finfo.min
PORTABLE_MIN_VALUES = 4096  # float weights smaller than this stay float (LayerNorm, biases, token types)


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
    from tagger.train.bert import encoder_config_json

    header = load_artifact(onnx_path, device="cpu").header
    if header["arch"] != "bert":
        raise SystemExit(f"{onnx_path}: a {header['arch']} model; recover reads BERT taggers only")
    model = onnx.load(str(onnx_path))
    state = torch_weights(model)
    subwords = SubwordEncoder.from_json(header["subwords"])
    config = bert_config_of(state, model, subwords.pad_id)
    crf = header.get("crf")
    if crf:
        state.update({f"crf.{k}": np.asarray(crf[k], np.float32) for k in ("transitions", "start", "end")})
    provenance = header["provenance"]
    return {
        "format_version": 1,
        "arch": "bert",
        "config": dict(provenance["config"]),
        "labels": list(header["labels"]),
        "vocab": subwords.to_json(),
        "state_dict": {k: torch.from_numpy(np.array(v, np.float32)) for k, v in sorted(state.items())},
        "encoder_config": encoder_config_json(_encoder(config)),
        "encoder": str(header.get("encoder", "")),
        "examples": examples,
        "data": dict(provenance.get("data", {})),
        "metrics": dict(provenance.get("metrics", {})),
        "created": str(provenance.get("trained_at", "")),
        "git_sha": str(provenance.get("train_git_sha", "")),
        "torch_version": str(provenance.get("torch_version", "")),
    }


def _encoder(config: Any) -> Any:
    """An untrained BertModel of `config` without its pooler (only its config is used)."""
    from transformers import BertModel

    from tagger.train.bert import without_pooler

    return without_pooler(BertModel(config, add_pooling_layer=False))


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


def lean_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                   dropout: float = 0.0, **kwargs: Any) -> tuple[Any, Any]:
    """BERT's eager attention with the scale as a Div by sqrt(head size), the shape ORT's fusion expects.

    transformers 5's eager attention multiplies by the scale, so the mask's Add has two Mul parents;
    the fusion takes the first (the scale's) as the mask path, fails, and fuses no Attention.
    """
    import math

    import torch

    scores = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(query.shape[-1])  # (batch, heads, pieces, pieces)
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs  # (batch, pieces, heads, head size)


def lean_model(checkpoint: dict[str, Any]) -> Any:
    """The checkpoint's BertTagger with eager attention and the additive mask built once, outside the layers."""
    import torch

    from tagger.train.bert import BertTagger
    from tagger.train.models import build_model

    class LeanBertTagger(BertTagger):
        """The same weights; forward passes a (batch, 1, 1, pieces) float mask, which BERT uses as given."""

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            """(batch, pieces) ids and 0/1 mask -> (batch, pieces, num_labels) scores."""
            additive = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * MASK_MIN  # (batch, 1, 1, pieces)
            hidden = self.encoder(input_ids=input_ids, attention_mask=additive).last_hidden_state  # (batch, pieces, hidden)
            return self.scores(hidden)  # (batch, pieces, num_labels)

    from transformers import AttentionInterface

    AttentionInterface.register("lean", lean_attention)
    model, _ = build_model(checkpoint)  # type: ignore[arg-type]
    model.encoder.config._attn_implementation = "lean"
    lean = LeanBertTagger(model.encoder, len(checkpoint["labels"]), 0.0, crf=model.crf is not None)
    lean.load_state_dict(model.state_dict())
    return lean.eval()


def op_counts(path: Path) -> dict[str, int]:
    """How many nodes of each op type a graph holds."""
    import onnx

    return dict(Counter(n.op_type for n in onnx.load(str(path)).graph.node).most_common())


def export_lean(checkpoint_path: Path, out: Path) -> dict[str, Any]:
    """Export eager attention with the mask built once, parity-check it as `tagger export` does,
    fuse it with ONNX Runtime's BERT optimizer and keep the header; report the fused ops."""
    import dataclasses

    from onnxruntime.transformers.optimizer import optimize_model

    from tagger.export.header import set_header
    from tagger.export.onnx import bert_exportable, check_parity, header_of, parity_batches, write_graph
    from tagger.train.checkpoint import load_checkpoint
    from tagger.train.scorers import bert_torch_emitter

    checkpoint = load_checkpoint(checkpoint_path)
    plain = bert_exportable(checkpoint)
    model = lean_model(dict(checkpoint))
    exportable = dataclasses.replace(plain, model=model, emit=bert_torch_emitter(model, plain.emit.encoder,
                                                                              len(checkpoint["labels"])))
    header = header_of(checkpoint, exportable)
    examples = [list(e) for e in checkpoint.get("examples", [])]
    raw = out.with_name(out.stem + "_unfused.onnx")
    write_graph(exportable, header, parity_batches(examples)[-2], raw)
    unfused_diff = check_parity(exportable, list(checkpoint["labels"]), raw, parity_batches(examples, windowed=True))
    hidden = model.encoder.config.hidden_size
    optimized = optimize_model(str(raw), model_type="bert", num_heads=model.encoder.config.num_attention_heads,
                               hidden_size=hidden, opt_level=0)  # fusions only; ORT applies its own at load
    optimized.save_model_to_file(str(out))
    set_header(out, header)
    fused_diff = check_parity(exportable, list(checkpoint["labels"]), out, parity_batches(examples, windowed=True))
    counts = op_counts(out)
    fusions = {op: counts.get(op, 0) for op in ("Attention", "MultiHeadAttention", "SkipLayerNormalization",
                                                "EmbedLayerNormalization", "BiasGelu", "FastGelu", "Gelu",
                                                "LayerNormalization", "Softmax", "Where", "IsNaN")}
    return {"unfused": str(raw), "unfused_max_diff": unfused_diff, "fused_max_diff": fused_diff,
            "fused_ops": fusions, "fused_stats": optimized.get_fused_operator_statistics()}


def portable_int8(path: Path, out: Path) -> dict[str, Any]:
    """Store every large float weight of a (fused) graph as symmetric per-channel INT8 behind a Cast+Mul.

    quantize_dynamic + float_compute (export/quantize.py) only know MatMul and Gather weights; a fused
    graph also feeds Attention (its packed QKV weight, (hidden, 3 x hidden)) and EmbedLayerNormalization
    (the embedding tables) from initializers. Widened here the same way (`export/portable.py: _widen`),
    ONNX Runtime folds each Cast+Mul into a float32 constant at session start, and the fused kernels
    see constants as before (Attention pre-packs them).
    """
    import onnx
    from onnx import numpy_helper

    from tagger.export.portable import _prune, _widen, saturation_risks

    model = onnx.load(str(path))
    readers = {name: node for node in model.graph.node for name in node.input}
    widened = []
    for init in list(model.graph.initializer):
        value = numpy_helper.to_array(init)
        if init.data_type != onnx.TensorProto.FLOAT or value.ndim != 2 or value.size < PORTABLE_MIN_VALUES:
            continue
        reader = readers.get(init.name)
        # A matrix product's weight (in, out) gets a scale per output column; a lookup table one per row.
        axis = 1 if reader is not None and reader.op_type in ("MatMul", "Attention") else 0
        absmax = np.abs(value).max(axis=1 - axis, keepdims=True)
        scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
        quantized = np.clip(np.round(value / scale), -127, 127)
        model.graph.initializer.remove(init)
        nodes, _ = _widen(model, quantized, scale, init.name)
        for k, node in enumerate(nodes):
            model.graph.node.insert(k, node)  # reads initializers only: first is a valid topological place
        widened.append(f"{reader.op_type if reader is not None else '?'}:{init.name}")
    _prune(model)
    onnx.save(model, str(out))
    return {"widened": len(widened), "by_op": dict(Counter(w.split(":")[0] for w in widened)),
            "saturation_risks": saturation_risks(model), "integer_products": sorted(
                {n.op_type for n in model.graph.node if n.op_type in ("MatMulInteger", "QAttention",
                                                                       "DynamicQuantizeMatMul", "MatMulIntegerToFloat")})}


def write_int8(path: Path, out: Path) -> dict[str, Any]:
    """`portable_int8` of a tagger file, with its header kept and the method recorded in it."""
    import onnx

    from tagger.export.header import set_header
    from tagger.header import META_KEY

    report = portable_int8(path, out)
    header = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}[META_KEY])
    header["quantization"] = {"mode": "int8", "method": "INT8 weights (MatMul, Attention QKV, EmbedLayerNormalization"
                              " tables), symmetric per channel, widened by Cast+Mul and computed in float32 (relean.py)"}
    set_header(out, header)
    return report


# ---------------------------------------------------------------- measure


def documents(folder: Path, split: str, words: int) -> tuple[list[list[str]], list[str]]:
    """The sentences and document ids of the first whole documents of a split holding about `words` words."""
    from tagger.corpus import document_ids, read_local_split

    gold = read_local_split(folder, "uk", split)
    ids = document_ids(folder, split, gold)
    sentences, runs, total = [], [], 0
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
    rec.add_argument("--data", type=Path, required=True, help="ner-uk folder: validation sentences to prove the rebuild on")
    rec.add_argument("--check", type=int, default=64, help="validation sentences the rebuild is proven on")
    lean = steps.add_parser("lean", help="export a checkpoint as a fused graph (and its portable INT8 form)")
    lean.add_argument("checkpoint", type=Path)
    lean.add_argument("-o", "--out", type=Path, required=True)
    lean.add_argument("--int8", type=Path, default=None)
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

        validation = [list(s.words) for s in read_local_split(args.data, "uk", "validation")]
        checkpoint = recover(args.onnx, validation[:8])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(args.out, checkpoint)  # type: ignore[arg-type]
        print(json.dumps(check_recovered(checkpoint, args.onnx, validation[: args.check])))
    elif args.step == "lean":
        report = export_lean(args.checkpoint, args.out)
        if args.int8:
            report["int8"] = write_int8(args.out, args.int8)
        print(json.dumps(report, indent=1))
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
