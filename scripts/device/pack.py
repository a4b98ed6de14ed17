"""On the GPU machine: each run's scores, and the best 13-type checkpoint packed to come back (< 64 MiB)."""
import glob, io, json, os, sys, tarfile
from pathlib import Path
import torch

work, out = Path(sys.argv[1]), Path(sys.argv[2])
summary = {}
for ck in sorted(glob.glob(f"{work}/*/best_*.pth")):
    c = torch.load(ck, map_location="cpu", weights_only=True)
    m = c.get("metrics", {})
    summary[Path(ck).parent.name] = {
        "epoch": m.get("epoch"), "val_f1": (m.get("validation") or {}).get("micro", {}).get("f1"),
        "test_f1": ((m.get("test") or {}).get("micro") or {}).get("f1"), "finished": "test" in m,
        "bytes": os.path.getsize(ck)}
(out / "summary.json").write_text(json.dumps(summary, indent=1))
print(json.dumps(summary, indent=1))
with tarfile.open(out / "logs.tgz", "w:gz") as tar:
    for f in sorted(glob.glob(f"{work}/*.log") + glob.glob(f"{work}/*/*.json") + glob.glob(f"{work}/*/*.png")):
        tar.add(f, arcname=f[len(str(work)) + 1:])
b13 = [k for k in summary if k.startswith("b13") and summary[k]["val_f1"] is not None]
if b13:
    best = max(b13, key=lambda k: summary[k]["val_f1"])
    c = torch.load(f"{work}/{best}/best_bert.pth", map_location="cpu", weights_only=True)
    packed = {}
    for k, v in c["state_dict"].items():
        if v.is_floating_point() and v.dim() == 2 and "word_embeddings" in k:
            scale = v.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127
            packed[k] = {"int8": torch.round(v / scale).to(torch.int8), "scale": scale.float()}
        elif v.is_floating_point() and v.dim() == 2 and v.numel() >= 65536:
            packed[k] = {"fp16": v.half()}
        else:
            packed[k] = {"raw": v}
    c["state_dict"] = packed
    c["packed_from"] = best
    buf = io.BytesIO(); torch.save(c, buf); data = buf.getvalue()
    part = 15 * 2**20
    for i in range(0, len(data), part):
        (out / f"ck13.part{i // part}").write_bytes(data[i:i + part])
    print("packed", best, len(data) / 1e6, "MB")
