"""Which integer kernel ONNX Runtime takes on this CPU: one MatMulInteger of 255s by 127s.

On CPUs without VNNI the U8S8 kernel adds u8 x s8 pairs in saturating int16 and prints 1,048,544
instead of the exact 2,072,640. Run it natively, and under an emulated AVX2-only CPU to check the
emulator takes that path:

    python scripts/avx2_probe.py
    qemu-x86_64 -cpu Haswell-v4,-pcid,-x2apic,-tsc-deadline,-invpcid,-spec-ctrl python scripts/avx2_probe.py
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

K = 64  # 32 pairs of 255 * 127 per output: each pair's sum (64,770) overflows int16


def main() -> None:
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "w"], ["y"])], "probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, K])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1])],
        [numpy_helper.from_array(np.full((K, 1), 127, np.int8), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = int(session.run(None, {"a": np.full((1, K), 255, np.uint8)})[0].item())
    exact = 255 * 127 * K
    print(f"MatMulInteger 255 x 127 over {K}: {got:,} (exact {exact:,}): "
          + ("exact (VNNI or AMX path)" if got == exact else "saturated (the AVX2 U8S8 path)"))


if __name__ == "__main__":
    main()
