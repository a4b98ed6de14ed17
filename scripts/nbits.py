"""Re-store a graph's float16 MatMul weights (en_lstm's frozen e5 layers: 4-bit values) as MatMulNBits, 4-bit, block 32, float compute.

An experiment toward room in the 150 MB budget (docs/experiments.md); export does not use it yet.
Usage: python scripts/nbits.py IN.onnx OUT.onnx
"""
import sys, numpy as np, onnx
from onnx import numpy_helper, helper
src, dst = sys.argv[1], sys.argv[2]
m = onnx.load(src)
g = m.graph
inits = {t.name: t for t in g.initializer}
casts = {n.output[0]: n for n in g.node if n.op_type == "Cast" and n.input[0] in inits and inits[n.input[0]].data_type == onnx.TensorProto.FLOAT16}
new_nodes, drop_inits, add_inits, worst = [], set(), [], 0.0
for n in g.node:
    if n.op_type == "MatMul" and n.input[1] in casts:
        cast = casts[n.input[1]]
        w = numpy_helper.to_array(inits[cast.input[0]]).astype(np.float32)  # (K, N)
        K, N = w.shape
        b = w.T.reshape(N, K // 32, 32)
        idx = np.abs(b).argmax(-1)[..., None]
        d = np.take_along_axis(b, idx, -1) / -8.0
        d = np.where(d == 0, 1.0, d)
        q = np.round(b / d) + 8
        assert q.min() >= 0 and q.max() <= 15, (q.min(), q.max())
        worst = max(worst, float(np.abs(d * (q - 8) - b).max()))
        q = q.astype(np.uint8)
        packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)  # low nibble = even index
        base = cast.input[0]
        if base not in drop_inits:  # one packed copy, however many MatMuls share the weight
            add_inits += [numpy_helper.from_array(packed, base + "_q4"), numpy_helper.from_array(d.reshape(-1).astype(np.float32), base + "_scale")]
            drop_inits.add(base)
        new_nodes.append(helper.make_node("MatMulNBits", [n.input[0], base + "_q4", base + "_scale"], list(n.output),
                                          name=n.name + "_nbits", domain="com.microsoft", K=K, N=N, bits=4, block_size=32, accuracy_level=1))
        continue
    new_nodes.append(n)
# A Cast (and its float16 initializer) goes only once nothing reads it: another op may share the weight.
used = {i for n in new_nodes for i in n.input if not (n.op_type == "Cast" and n.output[0] in casts)} | {o.name for o in g.output}
new_nodes = [n for n in new_nodes if not (n.op_type == "Cast" and n.output[0] in casts and n.output[0] not in used)]
drop_inits -= {n.input[0] for n in new_nodes if n.op_type == "Cast"}
del g.node[:]; g.node.extend(new_nodes)
keep = [t for t in g.initializer if t.name not in drop_inits]
del g.initializer[:]; g.initializer.extend(keep + add_inits)
if not any(o.domain == "com.microsoft" for o in m.opset_import):
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
onnx.save(m, dst)
print("max |requantised - fp16| =", worst, "matmuls:", len(drop_inits))
