"""Average the weights of several checkpoints of one recipe (a "model soup"): one model's size and speed.

    python scripts/soup.py runs/uk13_bert_s1/best_bert.pth runs/uk13_bert_s2/best_bert.pth -o runs/uk13_soup/best_bert.pth
    tagger export runs/uk13_soup/best_bert.pth -o runs/uk13_soup/soup.onnx
    tagger evaluate --split validation --model runs/uk13_soup/soup.onnx --data ../shared/data/ner-uk-2.0

The checkpoints must share their labels, vocabulary and weight shapes (seeds of one recipe on one
corpus); the soup keeps the first one's config and provenance, without its training metrics (they
were the first model's). Judge it on validation against the members' own files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tagger.train.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    members = [load_checkpoint(p) for p in args.checkpoints]
    first = members[0]
    for path, other in zip(args.checkpoints[1:], members[1:]):
        if (other["labels"], other["vocab"], other["arch"]) != (first["labels"], first["vocab"], first["arch"]):
            raise SystemExit(f"{path}: other labels, vocabulary or arch than {args.checkpoints[0]}; soup seeds of one recipe")
        if {k: v.shape for k, v in other["state_dict"].items()} != {k: v.shape for k, v in first["state_dict"].items()}:
            raise SystemExit(f"{path}: other weights than {args.checkpoints[0]}")
    state = {}
    for key, tensor in first["state_dict"].items():
        if tensor.is_floating_point():
            state[key] = (sum(m["state_dict"][key].double() for m in members) / len(members)).to(tensor.dtype)
        else:
            state[key] = tensor
    soup = {**first, "state_dict": state}
    soup.pop("metrics", None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, soup)  # type: ignore[arg-type]
    print(f"wrote {args.out}: the mean of {len(members)} checkpoints' {len(state)} tensors")


if __name__ == "__main__":
    main()
