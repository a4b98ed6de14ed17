"""Rebuild a float32 checkpoint from pack.py's parts (fp16 matrices, INT8-per-row embeddings)."""
import io, sys, glob
from pathlib import Path
import torch
from tagger.train.checkpoint import save_checkpoint
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
data = b"".join(Path(p).read_bytes() for p in sorted(glob.glob(f"{src}/ck13.part*"), key=lambda p: int(p.rsplit("part", 1)[1])))
c = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
state = {}
for k, v in c["state_dict"].items():
    state[k] = (v["int8"].float() * v["scale"]) if "int8" in v else v["fp16"].float() if "fp16" in v else v["raw"]
c["state_dict"] = state
c["returned_from_gpu"] = f"{c.pop('packed_from')}: matrices fp16, word embeddings INT8 per row (64 MiB return limit)"
dst.parent.mkdir(parents=True, exist_ok=True)
save_checkpoint(dst, c)
print(dst, c["metrics"].get("test", {}).get("micro"))
