"""MatMulNBits with 8-bit weights and int8 compute: an INT8 form measured against float compute (not shipped).

    python scripts/nbits8.py rewrite assets/uk_bert.onnx /tmp/uk_bert_nb64.onnx --block 64
    python scripts/nbits8.py probe /tmp/native.npz
    qemu-x86_64 -cpu Haswell-v4,-pcid,-x2apic,-tsc-deadline,-invpcid,-spec-ctrl python scripts/nbits8.py probe /tmp/avx2.npz
    python scripts/nbits8.py compare /tmp/native.npz /tmp/avx2.npz

`rewrite` turns each MatMul over INT8 weights (the portable Cast+Mul form) into ONNX Runtime's
MatMulNBits, 8 bits, zero point 128, the per-column scale repeated over the blocks: the same
weights, exactly; with `--level 4` the activations are quantised to int8 per block of each row
(not per call, so rows do not depend on their batch mates). `probe` runs one such product on
random weights and extreme rows, in a batch and row by row, at levels 1 (float) and 4 (int8), and
saves the outputs; `compare` prints how two CPUs' outputs differ and whether batching moved a row.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ZERO = 128  # uint8 zero point: stored u8 = int8 weight + 128


def nbits_node(inputs: str, output: str, name: str, q: np.ndarray, scale: np.ndarray, block: int,
               level: int) -> tuple[onnx.NodeProto, list[onnx.TensorProto]]:
    """MatMulNBits computing inputs @ (q * scale), q (K, N) int8, scale (N,)."""
    k, n = q.shape
    b = (q.T.astype(np.int16) + ZERO).astype(np.uint8).reshape(n, k // block, block)
    scales = np.repeat(scale.reshape(n, 1), k // block, axis=1).astype(np.float32).reshape(-1)
    zeros = np.full(n * (k // block), ZERO, np.uint8)
    inits = [numpy_helper.from_array(b, f"{name}_B"), numpy_helper.from_array(scales, f"{name}_S"),
             numpy_helper.from_array(zeros, f"{name}_Z")]
    node = helper.make_node("MatMulNBits", [inputs, f"{name}_B", f"{name}_S", f"{name}_Z"], [output], name=name,
                            domain="com.microsoft", K=k, N=n, bits=8, block_size=block, accuracy_level=level)
    return node, inits


def rewrite(src: Path, dst: Path, block: int, level: int) -> None:
    """Every MatMul whose weight is Mul(Cast(int8 initializer), per-column scale) -> MatMulNBits."""
    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    nodes, dropped, count = [], set(), 0
    for node in graph.node:
        mul = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        cast = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in inits or mul.input[1] not in inits:
            nodes.append(node)
            continue
        q = numpy_helper.to_array(inits[cast.input[0]])
        scale = numpy_helper.to_array(inits[mul.input[1]]).reshape(-1)
        if q.shape[0] % block or scale.size != q.shape[1]:
            nodes.append(node)
            continue
        new, new_inits = nbits_node(node.input[0], node.output[0], f"{node.name}_nbits", q, scale, block, level)
        nodes.append(new)
        graph.initializer.extend(new_inits)
        readers[node.input[1]] -= 1
        if readers[node.input[1]] == 0:  # the widened weight is read by no one else
            dropped |= {mul.name, cast.name}
            for name in (cast.input[0], mul.input[1]):
                graph.initializer.remove(inits.pop(name))
        count += 1
    del graph.node[:]
    graph.node.extend(n for n in nodes if n.name not in dropped)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    print(f"{count} MatMuls -> MatMulNBits (8 bits, block {block}, accuracy_level {level}): {dst}")


def probe(out: Path) -> None:
    """Outputs of one 384 x 384 MatMulNBits at levels 1 and 4, batched and row by row."""
    rng = np.random.default_rng(1)
    k = n = 384
    q = rng.integers(-128, 128, (k, n)).astype(np.int8)
    q[:, 0], q[:, 1] = 127, -128  # extreme columns: with extreme rows, every pair of products is at its largest
    scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
    a = (rng.standard_normal((64, k)) * rng.uniform(0.1, 10, (64, 1))).astype(np.float32)
    a[0], a[1] = 50.0, -50.0
    results = {"exact": a.astype(np.float64) @ (q.astype(np.float64) * scale)}
    for level in (1, 4):
        node, inits = nbits_node("A", "Y", "mm", q, scale, 32, level)
        graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["M", k])],
                                  [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", n])], inits)
        model = helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17),
                                                                      helper.make_opsetid("com.microsoft", 1)])
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        results[f"batch{level}"] = session.run(None, {"A": a})[0]
        results[f"alone{level}"] = np.concatenate([session.run(None, {"A": a[i : i + 1]})[0] for i in range(len(a))])
    np.savez(out, **results)
    for level in (1, 4):
        worst = np.abs(results[f"batch{level}"] - results["exact"]).max()
        print(f"level {level}: max |y - exact| {worst:.4g} (outputs up to {np.abs(results['exact']).max():,.0f})")


def compare(first: Path, second: Path) -> None:
    """How two probes' outputs differ, and whether batching moved any row on either."""
    a, b = np.load(first), np.load(second)
    for level in (1, 4):
        diff = np.abs(a[f"batch{level}"] - b[f"batch{level}"]).max()
        print(f"level {level}: {first.name} vs {second.name} max |diff| {diff:.4g};"
              f" batch vs alone {np.abs(a[f'batch{level}'] - a[f'alone{level}']).max():.3g}"
              f" / {np.abs(b[f'batch{level}'] - b[f'alone{level}']).max():.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("rewrite")
    one.add_argument("src", type=Path)
    one.add_argument("dst", type=Path)
    one.add_argument("--block", type=int, default=64)
    one.add_argument("--level", type=int, default=4)
    commands.add_parser("probe").add_argument("out", type=Path)
    two = commands.add_parser("compare")
    two.add_argument("first", type=Path)
    two.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "rewrite":
        rewrite(args.src, args.dst, args.block, args.level)
    elif args.command == "probe":
        probe(args.out)
    else:
        compare(args.first, args.second)


if __name__ == "__main__":
    sys.exit(main())
