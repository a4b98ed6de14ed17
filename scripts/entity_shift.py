"""A constant shift of a model's entity-label scores, chosen on validation, baked into its file.

    python scripts/entity_shift.py assets/uk13_bert.onnx --data ../shared/data/ner-uk-2.0
    python scripts/entity_shift.py assets/uk13_bert.onnx --data ../shared/data/ner-uk-2.0 --write -1.5 -o runs/shift/uk13_bert.onnx
    python scripts/entity_shift.py runs/shift/uk13_bert.onnx --data ../shared/data/ner-uk-2.0 --stamp

A CRF tagger's precision and recall trade through one number: a constant d added to every B-/I-
label's emission before decoding (d < 0: an entity needs more evidence). Without `--write` the
script decodes the validation split (read as one text, as the model was selected) with d over a
grid, for every entity label together and for one type's labels alone (`--type`), and prints micro
F1 on the whole split and on each document group (`bruk/`, `ng/`: the prefixes of documents.tsv);
the test split is not read. `--write D` stores a copy with the shift in its score layer's bias (its `Add`
of a bias vector before the emissions output), so the file alone, and every average that holds it,
reads the shifted scores, and records the shift and how it was chosen under the header's
provenance. `--stamp` (the one read of the test split) measures a file's test F1 and stores it in
its header.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tagger.export.header import get_header, write_stamped

import tagger
from tagger.api import gold_split
from tagger.conll import Sentence
from tagger.metrics import score
from tagger.predict import labelled
from tagger.runtime import machine

GRID = (-3.0, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0)


def shifted_tags(model: tagger.Pipeline, emissions: list[np.ndarray], columns: list[int], d: float) -> list[list[str]]:
    m = model.model
    moved = [e.copy() for e in emissions]
    for e in moved:
        e[:, columns] += d
    return labelled(m.decoder, m.labels, m.scores(moved))  # type: ignore[attr-defined]


def f1(gold: list[Sentence], tags: list[list[str]], keep: list[int]) -> float:
    return score([gold[i].tags for i in keep], [tags[i] for i in keep]).micro.f1


def table(path: str, data: str, types: list[str]) -> None:
    nlp = tagger.load(model=path, device="cpu")
    gold, names, _ = gold_split(nlp, "validation", data, with_names=True)
    assert names is not None
    emissions = nlp.model.emit([s.words for s in gold], None)  # type: ignore[attr-defined]
    groups = {"all": list(range(len(gold)))}
    for prefix in sorted({n.split("/")[0] + "/" for n in names if "/" in n}):
        groups[prefix] = [i for i, n in enumerate(names) if n.startswith(prefix)]
    m = machine()
    print(f"{path}, validation as one text ({len(gold)} sentences); {m['cpu']}, onnxruntime {m['onnxruntime']}")
    print("| labels shifted | d | " + " | ".join(f"F1 {g}" for g in groups) + " |")
    for name in ["every entity label", *types]:
        columns = [i for i, label in enumerate(nlp.model.labels) if label != "O" and (name not in types or label[2:] == name)]
        for d in GRID:
            tags = shifted_tags(nlp, emissions, columns, d)
            print(f"| {name} | {d:+.1f} | " + " | ".join(f"{f1(gold, tags, keep):.4f}" for keep in groups.values()) + " |")


def write(path: Path, data: str, d: float, out: Path) -> None:
    graph = onnx.load(str(path))
    header = get_header(graph, path)
    emissions = next(n for n in graph.graph.node if header["output"] in n.output)
    inits = {i.name: i for i in graph.graph.initializer}
    bias_name = next((i for i in emissions.input if i in inits), None)
    if emissions.op_type != "Add" or bias_name is None:
        raise SystemExit(f"{path}: its emissions are not an Add of a bias vector; nothing to shift")
    bias = numpy_helper.to_array(inits[bias_name]).copy()
    entity = np.array([label != "O" for label in header["labels"]])
    bias[entity] += np.float32(d)
    inits[bias_name].CopyFrom(numpy_helper.from_array(bias, bias_name))
    provenance = {**header["provenance"], "calibration": {
        "entity_score_shift": d, "chosen_on": f"the validation split of {data}, read as one text (scripts/entity_shift.py)"}}
    write_stamped(graph, {**header, "provenance": provenance}, out)  # type: ignore[typeddict-item]
    print(f"{out}: entity labels' scores {d:+.1f}; its header's test F1 is still the file's before (--stamp)")


def stamp_test(path: Path, data: str) -> None:
    """Measure the file's test F1 now (the test split's one read) and store it in its header."""
    nlp = tagger.load(model=str(path), device="cpu")
    gold, _, _ = gold_split(nlp, "test", data)
    f1_test = round(score([s.tags for s in gold], nlp.model.tag([s.words for s in gold])).micro.f1, 4)
    graph = onnx.load(str(path))
    header = get_header(graph, path)
    before = (header.get("quantization") or {}).get("test_f1_int8")
    quantization = {**(header.get("quantization") or {}), "test_f1_int8": f1_test, "test_sentences": len(gold),
                    "measured_on": machine()}
    write_stamped(graph, {**header, "quantization": quantization}, path)  # type: ignore[typeddict-item]
    print(f"{path}: test F1 {f1_test} (its header said {before}), stored in its header")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", required=True, help="the model's corpus folder (validation, and test with --write)")
    parser.add_argument("--type", action="append", default=[], help="also shift this entity type alone (repeat)")
    parser.add_argument("--write", type=float, metavar="D", help="bake shift D into a copy, and score it on test")
    parser.add_argument("-o", "--out", type=Path, help="where --write puts the file")
    parser.add_argument("--stamp", action="store_true", help="measure MODEL's test F1 and store it in its header")
    args = parser.parse_args()
    if args.stamp:
        stamp_test(args.model, args.data)
    elif args.write is None:
        table(str(args.model), args.data, args.type)
    elif args.out is None:
        raise SystemExit("--write needs -o OUT (the shipped file is replaced by hand, after checking)")
    else:
        write(args.model, args.data, args.write, args.out)


if __name__ == "__main__":
    main()
