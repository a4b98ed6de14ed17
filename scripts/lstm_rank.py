"""A narrower input for the uk BiLSTM: its LSTMs' input projections at rank r, fitted on training text.

    python scripts/lstm_rank.py --data ../shared/data [--model assets/uk_lstm.onnx] [--ranks 128,192,256,320]
        [--rounds 3] [--distil EPOCHS --lr 3e-5] [--write runs/rank]
    python scripts/lstm_rank.py --data ../shared/data --ranks 256 --distil 3 --lr 3e-5 --write runs/rank256 \
        --out runs/rank256/uk_lstm.onnx          # one rank in the shipped form (or --fitted runs/rank256/rank256.npz)
    python scripts/lstm_rank.py --data ../shared/data --stamp runs/rank256/uk_lstm.onnx   # reads the test split

71% of the BiLSTM's products are its two input projections (620 features -> 4 x 256 gates, each
direction). Both act on the same features, so together they are one 620 x 2048 map W; on real text
its outputs may live in far fewer than 620 dimensions. For each rank r the script replaces W by P Q
(P: 620 x r, applied once to each word's features; Q: r x 2048, inside the LSTMs), P Q being W's
best rank-r approximation *on the features of ner-uk's training sentences*: Q's rows the top r
principal directions of the gate inputs W x there, P = W^T Q^T, the part of the mean the truncation
drops folded into the LSTMs' input biases. `--distil` then fine-tunes P, both new W and their input
biases (the recurrent weights, the scores and the features frozen) to the file's per-word label
distributions on the same sentences (KL, Adam). Products a word: 2 x 1024 x (620 + 256) before,
r x 620 + 2 x 1024 x (r + 256) after.

Per rank, with nothing else running, it prints:
- fidelity: entity F1 of the rank-r file's entities against the file's own on text it was not fitted
  on (ner-uk-2.0-4types' ng training documents; the file trained on them, so this reads the change,
  not accuracy), and the share of gate-input variance kept;
- speed: session.run over the calls of tagging the benchmark's uk texts (ner-uk raw validation and
  test, as `scripts/benchmark.py`), the file and each rank alternating, words/s and the ratio.
`--out` writes one rank in the shipped form (`folded`: the piece table stored at rank r, INT8 per
channel, no integer product) and checks it against its float form; its header's test F1 is left
empty until `--stamp` measures it. No scored split is read before `--stamp`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import recorded_pipe
from entity_shift import stamp_test
from lstm_profile import lstm_nodes, session, weights
from tagger.export.header import get_header, write_stamped
from tagger.export.portable import _widen, gathered_tables, prune

import tagger
from tagger.conll import read_conll
from tagger.corpus import document_ids, named_documents, read_local_split
from tagger.metrics import score
from tagger.runtime import machine

Feed = dict[str, np.ndarray]


def feature_node(model: onnx.ModelProto) -> str:
    """The (batch, words, features) tensor both LSTMs read (the Concat of word, case, char, piece parts)."""
    concat = [n for n in model.graph.node if n.op_type == "Concat" and n.name == "/Concat"]
    if len(concat) != 1:
        raise SystemExit("expected one top-level /Concat of the word features (a uk BiLSTM file)")
    return concat[0].output[0]


def feature_batches(model: onnx.ModelProto, feeds: list[Feed]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per call: the (batch, words, features) tensor the LSTMs read, the sentence lengths, and the
    file's emissions (what a narrower file is fitted and distilled to)."""
    name = feature_node(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = session(probe)
    out = []
    for f in feeds:
        emissions, x = sess.run(["emissions", name], f)
        out.append((x, (f["word_ids"] != 0).sum(1).astype(np.int64), emissions))
    return out


def fit(w: dict[str, np.ndarray], x: np.ndarray, rank: int) -> dict[str, Any]:
    """P (I x r), the new W of each direction (1, 4H, r), their biases, and the variance kept."""
    both = np.concatenate([w["Wf"], w["Wb"]]).astype(np.float64)  # (8H, I): all gate inputs
    mean = x.mean(0)
    cov = np.cov(x, rowvar=False)
    gates = both @ cov @ both.T  # covariance of the gate inputs W x
    values, vectors = np.linalg.eigh(gates)
    order = np.argsort(values)[::-1]
    q = vectors[:, order[:rank]]  # (8H, r): top principal directions of the gate inputs
    kept = float(values[order[:rank]].sum() / values.sum())
    p = both.T @ q  # (I, r)
    approx = q @ q.T @ both  # (8H, I) = (P Q)^T
    shift = (both - approx) @ mean  # what the truncation drops from the mean's gate inputs
    half = w["Wf"].shape[0]
    out = {"P": p.astype(np.float32), "kept": kept}
    for tag, rows in (("f", slice(0, half)), ("b", slice(half, 2 * half))):
        out["W" + tag] = q[rows].astype(np.float32)[None]  # (1, 4H, r)
        bias = w["B" + tag].astype(np.float64).copy()
        bias[:half] += shift[rows]  # the input bias Wb (ONNX LSTM: B = [Wb, Rb])
        out["B" + tag] = bias.astype(np.float32)[None]
    return out


def onnx_to_torch(m: np.ndarray) -> np.ndarray:
    """Gate blocks from ONNX's order (i, o, f, c) to torch's (i, f, g, o), along the first axis."""
    i, o, f, c = np.split(m, 4)
    return np.concatenate([i, f, c, o])


def torch_to_onnx(m: np.ndarray) -> np.ndarray:
    """The inverse of onnx_to_torch."""
    i, f, c, o = np.split(m, 4)
    return np.concatenate([i, o, f, c])


def distil(w: dict[str, np.ndarray], fitted: dict[str, Any], batches: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
           epochs: int, lr: float, seed: int = 0) -> dict[str, Any]:
    """Fine-tune P, each direction's new W and input bias so the emissions match the file's on
    `batches` ((batch, words, features) features, lengths, the file's emissions), the rest frozen."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    hidden = w["Rf"].shape[1]
    rank = fitted["P"].shape[1]
    lstm = nn.LSTM(rank, hidden, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for tag, suffix in (("f", ""), ("b", "_reverse")):
            getattr(lstm, "weight_ih_l0" + suffix).copy_(torch.from_numpy(onnx_to_torch(fitted["W" + tag][0])))
            getattr(lstm, "weight_hh_l0" + suffix).copy_(torch.from_numpy(onnx_to_torch(w["R" + tag])))
            b = fitted["B" + tag][0]
            getattr(lstm, "bias_ih_l0" + suffix).copy_(torch.from_numpy(onnx_to_torch(b[: 4 * hidden])))
            getattr(lstm, "bias_hh_l0" + suffix).copy_(torch.from_numpy(onnx_to_torch(b[4 * hidden :])))
            getattr(lstm, "weight_hh_l0" + suffix).requires_grad_(False)
            getattr(lstm, "bias_hh_l0" + suffix).requires_grad_(False)
    p = nn.Parameter(torch.from_numpy(fitted["P"].copy()))
    ws, bs = torch.from_numpy(w["Ws"]), torch.from_numpy(w["bs"])

    def emissions(x: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(torch.from_numpy(x) @ p, torch.from_numpy(lengths),
                                                   batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out @ ws + bs

    params = [p] + [q for q in lstm.parameters() if q.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    order = np.random.default_rng(seed).permutation(len(batches))
    for epoch in range(epochs + 1):  # epoch 0 only measures the fitted start
        total = count = 0.0
        for k in order:
            x, lengths, target = batches[k]
            mask = torch.from_numpy(np.arange(x.shape[1])[None] < lengths[:, None])
            with torch.set_grad_enabled(epoch > 0):
                student, teacher = emissions(x, lengths)[mask], torch.from_numpy(target)[mask]
                # Per-word label distributions (what decoding reads), KL from the file's to the student's.
                loss = nn.functional.kl_div(student.log_softmax(-1), teacher.log_softmax(-1), log_target=True,
                                            reduction="batchmean")
            if epoch > 0:
                opt.zero_grad()
                loss.backward()
                opt.step()
            total += float(loss.detach()) * int(mask.sum())
            count += int(mask.sum())
        print(f"  distil epoch {epoch}: KL {total / count:.5f}")
    out = dict(fitted)
    with torch.no_grad():
        out["P"] = p.detach().numpy().copy()
        for tag, suffix in (("f", ""), ("b", "_reverse")):
            out["W" + tag] = torch_to_onnx(getattr(lstm, "weight_ih_l0" + suffix).numpy())[None].copy()
            b = out["B" + tag][0].copy()
            b[: 4 * hidden] = torch_to_onnx(getattr(lstm, "bias_ih_l0" + suffix).numpy())
            out["B" + tag] = b[None]
    return out


def ranked(model: onnx.ModelProto, fitted: dict[str, Any]) -> onnx.ModelProto:
    """The file with P applied to the word features and each LSTM's W and B replaced (float32 weights)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    x = feature_node(out)
    for node in g.node:
        node.input[:] = [x + "_ranked" if i == x else i for i in node.input]
    concat = next(k for k, n in enumerate(g.node) if n.output and n.output[0] == x)
    g.node.insert(concat + 1, onnx.helper.make_node("MatMul", [x, "rank_P"], [x + "_ranked"], name="/rank/MatMul"))
    g.initializer.append(numpy_helper.from_array(fitted["P"], "rank_P"))
    for tag, node in zip("fb", lstm_nodes(out)):
        node.input[1], node.input[3] = f"rank_W{tag}", f"rank_B{tag}"
        g.initializer.extend([numpy_helper.from_array(fitted["W" + tag], f"rank_W{tag}"),
                              numpy_helper.from_array(fitted["B" + tag], f"rank_B{tag}")])
    onnx.checker.check_model(out)
    return out


def piece_table(model: onnx.ModelProto) -> tuple[onnx.NodeProto, np.ndarray]:
    """The 4-bit piece table's node and its values (every row, as ONNX Runtime dequantises it)."""
    node = next(n for n in model.graph.node if n.op_type == "GatherBlockQuantized")
    inits = {i.name: i for i in model.graph.initializer}
    rows = inits[node.input[0]].dims[0]
    ids = onnx.helper.make_tensor_value_info("ids", onnx.TensorProto.INT64, [rows])
    probe = onnx.helper.make_graph(
        [onnx.helper.make_node(node.op_type, [node.input[0], "ids", *node.input[2:]], ["rows"], domain=node.domain,
                               **{a.name: onnx.helper.get_attribute_value(a) for a in node.attribute})],
        "table", [ids], [onnx.helper.make_tensor_value_info("rows", onnx.TensorProto.FLOAT16, None)],
        [inits[name] for name in node.input if name in inits])
    table = onnx.helper.make_model(probe, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    values = session(table).run(None, {"ids": np.arange(rows, dtype=np.int64)})[0]
    return node, values.astype(np.float32)


def folded(model: onnx.ModelProto, fitted: dict[str, Any]) -> onnx.ModelProto:
    """The rank-r file in the shipped form: the piece table's rows stored already multiplied by P's
    piece rows (r numbers a piece, not 384), the word, case and char features multiplied by the rest
    of P, the two summed; every weight INT8 per channel behind a Cast+Mul, the table gathered before
    widening (export/portable.py), so no integer product is made on any CPU."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    x = feature_node(out)
    concat = next(n for n in g.node if n.output and n.output[0] == x)
    before = list(g.node)
    gather, values = piece_table(out)
    cast = next(n for n in g.node if gather.output[0] in n.input)
    mean = concat.input[3]  # the pieces' mean, the last feature block
    other_features = fitted["P"].shape[0] - values.shape[1]  # words, cases, chars
    if len(concat.input) != 4 or other_features <= 0:
        raise SystemExit("expected features = words, cases, chars, then the pieces' mean")
    p = fitted["P"]
    other, pieces = p[:other_features], p[other_features:]

    def int8(value: np.ndarray, axis: int, name: str) -> list[onnx.NodeProto]:
        """`value` stored INT8, one scale per slice taken along `axis` (a row, a column, a gate)."""
        absmax = np.abs(value).max(axis=axis, keepdims=True)
        scale = np.where(absmax > 0, absmax / 127.0, 1.0).astype(np.float32)
        nodes, _ = _widen(out, np.clip(np.round(value / scale), -127, 127), scale, name)
        return nodes

    widen = int8(values @ pieces, 1, "rank_piece_table")  # one scale a row
    widen += int8(other, 0, "rank_P")  # one scale an output column
    for tag in "fb":
        widen += int8(fitted["W" + tag], 2, f"rank_W{tag}")  # one scale a gate row
        g.initializer.append(numpy_helper.from_array(fitted["B" + tag], f"rank_B{tag}"))
    rest = x + "_rest"
    nodes = []
    for n in before:
        if n is gather:
            nodes.append(onnx.helper.make_node("Gather", ["rank_piece_table", n.input[1]], [cast.output[0]], name="/rank/pieces"))
        elif n is cast:
            continue
        elif n is concat:
            del n.input[3]
            n.output[0] = rest
            nodes += [n, onnx.helper.make_node("MatMul", [rest, "rank_P"], [x + "_other"], name="/rank/MatMul"),
                      onnx.helper.make_node("Add", [x + "_other", mean], [x], name="/rank/Add")]
        else:
            if n.op_type == "LSTM":
                tag = "f" if "forward" in n.name else "b"
                n.input[1], n.input[3] = f"rank_W{tag}", f"rank_B{tag}"
            nodes.append(n)
    del g.node[:]
    g.node.extend(widen + nodes)
    del g.value_info[:]  # shapes recorded for the 620-wide features no longer hold
    prune(out)
    gathered_tables(out)
    onnx.checker.check_model(out)
    return out


def method(rank: int) -> str:
    return (f"the LSTMs' input projections at rank {rank} (scripts/lstm_rank.py: fitted to the gate inputs of"
            " ner-uk train, distilled to this file's word label distributions there), the piece table stored"
            " at that rank")


def write(model: onnx.ModelProto, fitted: dict[str, Any], ranked_path: Path, out: Path,
          held: list[list[str]], reference: list[list[str]]) -> None:
    """The shipped form of a rank-r file at `out`, checked against its float form; the header says
    what changed and keeps what it was (its test F1 is re-measured by `--stamp`)."""
    rank = fitted["P"].shape[1]
    graph = folded(model, fitted)
    header = get_header(model, Path("the file"))
    before = dict(header.get("quantization") or {})
    info = {**before, "method": f"{before.get('method', '')}; {method(rank)}", "test_f1_int8": None,
            "rewritten_from": {"method": before.get("method"), "test_f1_int8": before.get("test_f1_int8")}}
    write_stamped(graph, {**header, "quantization": info}, out)  # type: ignore[typeddict-item]
    calls = feeds_of(tagger.load(model=str(ranked_path), device="cpu"), held)
    a, b = session(str(ranked_path)), session(str(out))
    worst = max(float(np.abs(a.run(None, f)[0] - b.run(None, f)[0])[f["word_ids"] != 0].max()) for f in calls)
    agree = score(reference, tagger.load(model=str(out), device="cpu").model.tag(held)).micro.f1
    print(f"{out}: {out.stat().st_size / 1e6:.1f} MB; emissions vs its float32 form max |diff| {worst:.3g}; "
          f"entities vs the shipped file on the ng sentences F1 {agree:.4f}")


def feeds_of(nlp: tagger.Pipeline, held: list[list[str]]) -> list[Feed]:
    """The session.run inputs of tagging `held` with `nlp` (one file), recorded as they pass."""
    feeds: list[Feed] = []
    session = nlp.artifacts[0].session
    run = session.run

    def recording(*a: Any, **k: Any) -> Any:
        feeds.append(a[1])
        return run(*a, **k)

    object.__setattr__(session, "run", recording)
    try:
        nlp.model.tag(held)
    finally:
        object.__setattr__(session, "run", run)
    return feeds


def sentences(path: Path) -> list[list[str]]:
    return [s.words for s in read_conll(path)]


def ng_sentences(folder: Path) -> list[list[str]]:
    """ner-uk-2.0-4types training sentences of its ng documents (as `--extra-documents ng/` keeps them)."""
    train = read_local_split(folder, "uk", "train")
    keep = named_documents(document_ids(folder, "train", train), "ng/", "ng_sentences", "train", folder)
    return [train[i].words for i in keep]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="the folder holding ner-uk/ and ner-uk-2.0-4types/")
    parser.add_argument("--model", default="assets/uk_lstm.onnx")
    parser.add_argument("--ranks", default="128,192,256,320")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--distil", type=int, default=0, metavar="EPOCHS",
                        help="then fine-tune each rank's P, W and input biases to the file's emissions on ner-uk train")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--write", type=Path, help="save each rank's file here as rank<r>.onnx (float32 weights)")
    parser.add_argument("--fitted", type=Path, help="with one rank: its P, W and biases as --write saved them (rank<r>.npz)")
    parser.add_argument("--out", type=Path, help="with one rank: write its file in the shipped form here")
    parser.add_argument("--stamp", type=Path, help="only measure FILE's test F1 (ner-uk test) and store it in its header")
    args = parser.parse_args()
    if args.stamp:
        return stamp_test(args.stamp, str(args.data))
    ranks = [int(r) for r in args.ranks.split(",")]
    if args.out and len(ranks) != 1:
        raise SystemExit("--out writes one rank's file: give one --ranks value")
    m = machine()
    print(f"{args.model}; {m['cpu']} ({', '.join(m['flags'])}), {m['cores']} cores, onnxruntime {m['onnxruntime']}")

    model = onnx.load(args.model)
    w = weights(model)
    nlp = tagger.load(model=args.model, device="cpu")
    batches = feature_batches(model, feeds_of(nlp, sentences(args.data / "ner-uk" / "train.conll")))
    x = np.concatenate([b[0][np.arange(b[0].shape[1])[None] < b[1][:, None]] for b in batches]).astype(np.float64)
    print(f"fitted on {x.shape[0]} words of ner-uk train ({x.shape[1]} features)")

    held = ng_sentences(args.data / "ner-uk-2.0-4types")
    reference = nlp.model.tag(held)
    files = sorted((args.data / "ner-uk" / "raw" / "validation").glob("*.txt")) + sorted((args.data / "ner-uk" / "raw" / "test").glob("*.txt"))
    texts = [f.read_text(encoding="utf-8") for f in files]
    calls = [call[1][1] for call in recorded_pipe(nlp, texts)[2]]
    words = sum(int((f["word_ids"] != 0).sum()) for f in calls)
    sessions = {"file": session(args.model)}
    with tempfile.TemporaryDirectory() as folder:
        for r in ranks:
            if args.fitted:
                fitted = {k: v[()] if v.ndim == 0 else v for k, v in np.load(args.fitted).items()}
            else:
                fitted = fit(w, x, r)
                if args.distil:
                    fitted = distil(w, fitted, batches, args.distil, args.lr)
            if args.write:
                args.write.mkdir(parents=True, exist_ok=True)
                np.savez(args.write / f"rank{r}.npz", **fitted)
            path = Path(args.write or folder) / f"rank{r}.onnx"
            path.parent.mkdir(parents=True, exist_ok=True)
            onnx.save(ranked(model, fitted), path)
            other = tagger.load(model=str(path), device="cpu")
            agree = score(reference, other.model.tag(held)).micro.f1
            products = r * x.shape[1] + 2 * 4 * 256 * (r + 256)
            print(f"rank {r}: gate-input variance kept {fitted['kept']:.5f}; entities vs the file on {len(held)} ng "
                  f"sentences F1 {agree:.4f}; products a word {products / (2 * 4 * 256 * (x.shape[1] + 256)):.2f}x the file's")
            sessions[f"rank {r}"] = session(str(path))
            if args.out:
                write(model, fitted, path, args.out, held, reference)
        for k in range(args.rounds):
            times = {}
            for name, sess in (list(sessions.items()) if k % 2 == 0 else list(sessions.items())[::-1]):
                start = time.perf_counter()
                for f in calls:
                    sess.run(None, f)
                times[name] = time.perf_counter() - start
            print(f"round {k + 1}: " + ", ".join(f"{n} {words / t:,.0f} words/s ({times['file'] / t:.2f}x)" for n, t in times.items()))


if __name__ == "__main__":
    main()
