"""The BERT tagger on a tiny encoder: overfit, save/load, export parity, alignment, windows, batching, INT8."""

from __future__ import annotations

import copy
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import tagger.export.onnx as exporter
from conftest import LABELS, TAGS, WORDS, Trained, quiet_export, silence_tracer_warnings, tiny_bert_config, train_tiny
from tagger.export.quantize import ffn_down_matmuls, smooth_ffn_inputs
from tagger.artifact import load_artifact
from tagger.cli import cli
from tagger.decode import Decoder
from tagger.errors import TaggerError
from tagger.header import META_KEY
from tagger.info import describe
from tagger.predict import Tagger, tag_with
from tagger.subwords import SubwordEncoder, plan_windows
from tagger.train.checkpoint import load_checkpoint
from tagger.train.models import build_model
from tagger.train.recipes import encoder_groups
from tagger.train.scorers import bert_torch_emitter, torch_run
from tagger.train.trim import trim_unigram

pytestmark = pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning")


@pytest.fixture(scope="module")
def torch_bert(trained_bert: Trained):  # noqa: ANN201 - (BertTagger, SubwordEncoder)
    return build_model(load_checkpoint(trained_bert.checkpoint))


@pytest.fixture(scope="module")
def bert_tagger(exported_bert: Path) -> Tagger:
    return Tagger(load_artifact(exported_bert, device="cpu"))


# --- the keystone ------------------------------------------------------------------------------


def test_overfits_and_reloads_from_plain_data(trained_bert: Trained, torch_bert) -> None:  # noqa: ANN001
    """Train, reload the best checkpoint with weights_only=True, and predict exactly the gold tags."""
    checkpoint = torch.load(trained_bert.checkpoint, map_location="cpu", weights_only=True)
    assert checkpoint["arch"] == "bert" and checkpoint["labels"] == LABELS
    assert {"vocab", "encoder_config", "state_dict", "config"} <= set(checkpoint)
    model, subwords = torch_bert
    assert tag_with(bert_torch_emitter(model, subwords, len(LABELS)), Decoder(LABELS), LABELS, WORDS) == TAGS
    assert trained_bert.result.validation_f1 == 1.0
    assert (trained_bert.out / "best_bert_curves.png").is_file()
    assert "fp32 training" in trained_bert.log


def test_onnx_tags_equal_gold_and_the_header_carries_the_tokenizer(bert_tagger: Tagger, trained_bert: Trained) -> None:
    assert bert_tagger.tag(WORDS) == TAGS
    header = bert_tagger.artifact.header
    assert header["arch"] == "bert" and header["max_length"] == 64
    stored = SubwordEncoder.from_json(header["subwords"])  # compressed in the file
    plain = SubwordEncoder.from_json(load_checkpoint(trained_bert.checkpoint)["vocab"])
    assert "tokenizer_zlib" in header["subwords"] and stored.to_json() == plain.to_json()
    assert "CC BY-NC-SA" in header["provenance"]["license"]
    assert json.loads(json.dumps(header)) == header


def test_exported_graph_matches_torch_on_batches(exported_bert: Path, torch_bert) -> None:  # noqa: ANN001
    model, subwords = torch_bert
    session = load_artifact(exported_bert, device="cpu").session
    batch = [*WORDS, ["Київ"], WORDS[1] * 2]
    windows, pieces = subwords.windows(batch)
    ids, mask, _ = subwords.batch_inputs(windows, pieces)
    (got,) = session.run(["emissions"], {"input_ids": ids, "attention_mask": mask})
    want = torch_run(model, {"input_ids": ids, "attention_mask": mask})
    assert got.shape == (len(batch), ids.shape[1], len(LABELS))
    assert np.abs(got - want)[mask == 1].max() < 1e-4


def test_inference_imports_no_torch_for_a_bert_model(exported_bert: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from tagger.artifact import load_artifact; from tagger.predict import Tagger;"
        f"t = Tagger(load_artifact({str(exported_bert)!r}, 'cpu')); print(t.tag([['Київ']]));"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# --- words and pieces --------------------------------------------------------------------------


def test_each_word_is_scored_from_its_first_piece(torch_bert) -> None:  # noqa: ANN001
    _, subwords = torch_bert
    sentence = ["Моринцях", "Київський", "x", "Apple's"]
    windows, pieces = subwords.windows([sentence])
    ids, mask, firsts = subwords.batch_inputs(windows, pieces)
    assert ids[0, 0] == subwords.cls_id and ids[0, int(mask[0].sum()) - 1] == subwords.sep_id
    assert [ids[0, f] for f in firsts[0]] == [p[0] for p in pieces[0]]
    assert any(len(p) > 1 for p in pieces[0])  # some word really is split
    flat = [i for p in pieces[0] for i in p]
    assert list(ids[0, 1 : 1 + len(flat)]) == flat


def test_words_that_normalise_to_nothing_still_get_a_piece(torch_bert) -> None:  # noqa: ANN001
    _, subwords = torch_bert
    assert subwords.word_pieces([""]) == [[subwords.unk_id]]
    assert all(subwords.word_pieces(["\u200b", "\x00", "\u0301", "🙂"]))


def test_trimmed_vocabulary_segments_corpus_words_as_the_full_one(tiny_encoder: Path) -> None:
    from tokenizers import Tokenizer

    spec = json.loads((tiny_encoder / "tokenizer.json").read_text(encoding="utf-8"))
    words = [w for s in WORDS for w in s]
    trimmed, keep = trim_unigram(spec, words, top_k=0)
    full, small = Tokenizer.from_str(json.dumps(spec)), Tokenizer.from_str(json.dumps(trimmed))
    assert keep[:4] == [0, 1, 2, 3]  # the specials lead, in their order
    assert len(keep) < len(spec["model"]["vocab"])
    for word in words:
        assert small.encode(word, add_special_tokens=False).tokens == full.encode(word, add_special_tokens=False).tokens
    unseen = small.encode("Невідоме слово", add_special_tokens=False)
    assert "<unk>" not in unseen.tokens  # single characters survive the trim: no text is lost


def test_in_alphabet_trim_keeps_only_pieces_written_in_the_words_characters(tiny_encoder: Path) -> None:
    """The frozen context encoder's trim: its top_k never goes to pieces of another script."""
    spec = json.loads((tiny_encoder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    words = ["Hello", "world", "Kyiv"]  # Latin only; the tiny vocabulary's long pieces are Cyrillic
    alphabet = {c for w in words for c in w} | {"\u2581"}
    _, everything = trim_unigram(spec, words, top_k=len(vocab))
    _, filtered = trim_unigram(spec, words, top_k=len(vocab), in_alphabet=True)
    long = [i for i in everything[4:] if len(vocab[i][0].strip("\u2581")) > 1]  # past the specials
    assert long and not set(long) & set(filtered)  # kept by the plain top_k, dropped by the filter
    assert all(len(vocab[i][0].strip("\u2581")) <= 1 or set(vocab[i][0]) <= alphabet for i in filtered[4:])
    assert len(filtered) < len(everything)


# --- long sentences ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 8), max_size=300), st.integers(8, 60))
def test_windows_cover_every_word_once(counts: list[int], capacity: int) -> None:
    plans = plan_windows(counts, capacity)
    kept = [i for _, _, a, b in plans for i in range(a, b)]
    assert kept == list(range(len(counts)))  # each word scored once, in order
    for start, end, keep_start, keep_end in plans:
        assert start <= keep_start <= keep_end <= end
        assert sum(counts[start:end]) <= capacity
    for a, b in zip(plans, plans[1:]):
        assert a[0] < b[0] <= a[1]  # each window moves on, and none skips a word
        if max(counts) <= capacity // 4:
            assert b[0] < a[1]  # where words are small against the window, consecutive windows overlap


def test_a_2000_word_sentence_is_windowed_and_merged_never_truncated(bert_tagger: Tagger, torch_bert) -> None:  # noqa: ANN001
    model, subwords = torch_bert
    long = [w for _ in range(100) for s in WORDS for w in s][:2000]
    assert len(long) == 2000
    (tags,) = bert_tagger.tag([long])
    assert len(tags) == 2000
    windows, pieces = subwords.windows([long])
    assert len(windows) > 20 and all(w.end - w.start < 64 for w in windows)
    # Each word's scores come from the window where it sits furthest from a cut, run alone.
    (scores,) = bert_tagger.emit([long], None)
    for w in windows:
        ids, mask, firsts = subwords.batch_inputs([w], pieces)
        alone = torch_run(model, {"input_ids": ids, "attention_mask": mask})[0]
        kept = firsts[0][w.keep_start - w.start : w.keep_end - w.start]
        assert np.allclose(scores[w.keep_start : w.keep_end], alone[kept], atol=1e-4)


def test_batched_equals_one_by_one(bert_tagger: Tagger, monkeypatch: pytest.MonkeyPatch) -> None:
    import tagger.subwords as subwords_module

    sentences = [*WORDS, [], ["Київ"], WORDS[1] * 3, ["Тарас", "Шевченко", "та", "Києві"], WORDS[0] * 9]
    one_by_one = [bert_tagger.tag([s])[0] for s in sentences]
    assert [len(t) for t in one_by_one] == [len(s) for s in sentences]
    assert bert_tagger.tag(sentences) == one_by_one
    monkeypatch.setattr(subwords_module, "BATCH_PIECES", 40)  # many small encoder calls keep order
    monkeypatch.setattr(subwords_module, "MAX_WINDOWS", 2)
    assert bert_tagger.tag(sentences) == one_by_one
    assert bert_tagger.tag([]) == [] and bert_tagger.tag([[]]) == [[]]


# --- export, INT8, CLI -------------------------------------------------------------------------


def test_export_refuses_when_outputs_differ(trained_bert: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter, "ATOL_BERT", -1.0)
    with pytest.raises(exporter.ExportMismatchError, match="max diff"):
        with warnings.catch_warnings():
            silence_tracer_warnings()
            exporter.export_checkpoint(trained_bert.checkpoint, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_int8_export_measures_test_f1_before_and_after(trained_bert: Trained, session_corpus: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "best_bert.pth"
    shutil.copy(trained_bert.checkpoint, checkpoint)
    with warnings.catch_warnings():
        silence_tracer_warnings()
        report = exporter.export_checkpoint(checkpoint, quantize="int8", data=str(session_corpus))
    q = report.quantized
    assert q is not None and q["test_f1_fp32"] == 1.0 and 0.0 <= q["test_f1_int8"] <= 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_bert.onnx", "best_bert.pth"]
    header = json.loads({p.key: p.value for p in onnx.load(str(report.path)).metadata_props}[META_KEY])
    assert header["quantization"] == q and "float32 over the INT8 weights" in q["method"] and "SmoothQuant" not in q["method"]
    assert q["measured_on"]["onnxruntime"] and q["measured_on"]["cpu"]  # a score says where it was measured
    graph = onnx.load(str(report.path)).graph
    assert not any(n.op_type in ("DynamicQuantizeLinear", "MatMulInteger") for n in graph.node)  # float compute
    assert any(i.data_type == onnx.TensorProto.INT8 and len(i.dims) == 2 for i in graph.initializer)  # INT8 storage
    assert len(Tagger(load_artifact(report.path, device="cpu")).tag(WORDS)[0]) == len(WORDS[0])


def test_smoothing_moves_scale_into_ffn_weights_and_keeps_float_outputs(exported_bert: Path, tmp_path: Path) -> None:
    model = onnx.load(str(exported_bert))
    header = load_artifact(exported_bert, device="cpu").header
    before = {n.input[1]: onnx.numpy_helper.to_array(i) for n in ffn_down_matmuls(model)
              for i in model.graph.initializer if i.name == n.input[1]}
    assert len(before) == 2  # one per layer of the tiny encoder
    assert smooth_ffn_inputs(model, header, WORDS) == len(before)
    after = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer if i.name in before}
    assert all(not np.allclose(after[k], before[k]) for k in before)  # the weights took the scales...
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "smoothed.onnx"))
    emit = [Tagger(load_artifact(p, device="cpu")).emit(WORDS, None) for p in (exported_bert, tmp_path / "smoothed.onnx")]
    for a, b in zip(*emit):  # ...and the inserted 1/s cancels them in float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_tag_and_evaluate_through_the_cli(exported_bert: Path, session_corpus: Path) -> None:
    runner = CliRunner()
    text = "Тарас Шевченко народився в Моринцях.\n"
    done = runner.invoke(cli, ["tag", "--model", str(exported_bert), "--format", "jsonl"], input=text)
    assert done.exit_code == 0, done.output
    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    for entity in line["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
    assert {e["text"] for e in line["entities"]} >= {"Тарас Шевченко"}
    done = runner.invoke(cli, ["evaluate", "--model", str(exported_bert), "--data", str(session_corpus), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["micro"]["f1"] == 1.0


def test_train_config_checks_bert_options(tiny_encoder: Path, session_corpus: Path, tmp_path: Path) -> None:
    from tagger.train.loop import train

    with pytest.raises(ValueError, match="max_pieces"):
        tiny_bert_config(session_corpus, tmp_path, tiny_encoder, max_pieces=8)
    with pytest.raises(ValueError, match="precision"):
        tiny_bert_config(session_corpus, tmp_path, tiny_encoder, precision="fp8")
    config = tiny_bert_config(session_corpus, tmp_path, tiny_encoder, max_pieces=128)
    with pytest.raises(TaggerError, match="exceeds encoder .* 64 positions"):
        train(config)
    assert tiny_bert_config(session_corpus, tmp_path, tiny_encoder, lr=None).lr == 8e-5  # the arch's default
    with pytest.raises(ValueError, match="layer_decay"):
        tiny_bert_config(session_corpus, tmp_path, tiny_encoder, layer_decay=0.0)
    with pytest.raises(ValueError, match="layer_decay is for --arch bert"):
        tiny_bert_config(session_corpus, tmp_path, tiny_encoder, arch="lstm", layer_decay=0.5)


def test_layer_decay_slows_each_layer_towards_the_embeddings(torch_bert, session_corpus: Path, tiny_encoder: Path,  # noqa: ANN001
                                                             tmp_path: Path) -> None:
    """Every trained parameter is in one group; the rate is lr * decay ** (its depth below the classifier)."""
    model, _ = torch_bert  # 2 encoder layers: embeddings at depth 0, layers 1-2, the classifier at 3
    config = tiny_bert_config(session_corpus, tmp_path, tiny_encoder, lr=1e-3, layer_decay=0.5, weight_decay=0.01)
    groups = encoder_groups(model, config)
    rate = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = [(n, p) for n, p in model.named_parameters() if not n.startswith("crf.")]
    assert sum(len(g["params"]) for g in groups) == len(rate) == len(named)
    lr = {n: rate[id(p)][0] for n, p in named}
    assert lr["scores.weight"] == groups[0]["lr"] == pytest.approx(1e-3)  # the rate the progress line shows
    assert lr["encoder.encoder.layer.1.output.dense.weight"] == pytest.approx(5e-4)
    assert lr["encoder.encoder.layer.0.attention.self.query.bias"] == pytest.approx(2.5e-4)
    assert lr["encoder.embeddings.word_embeddings.weight"] == pytest.approx(1.25e-4)
    assert all(rate[id(p)][1] == (0.01 if p.ndim >= 2 else 0.0) for _, p in named)  # not on biases, LayerNorms
    assert all(lr[n] < 1e-3 for n in lr if not n.startswith("scores."))  # all of the encoder learns slower
    flat = encoder_groups(model, tiny_bert_config(session_corpus, tmp_path, tiny_encoder, lr=1e-3))
    assert {g["lr"] for g in flat} == {1e-3}  # the default, 1: one rate, as before the option
    other = copy.deepcopy(model)  # an encoder with a parameter outside BERT's layout (as DeBERTa's)
    other.encoder.register_parameter("rel_embeddings", torch.nn.Parameter(torch.zeros(4, 32)))
    with pytest.raises(TaggerError, match="'encoder.rel_embeddings'.*--layer-decay 1"):
        encoder_groups(other, config)
    assert {g["lr"] for g in encoder_groups(other, tiny_bert_config(session_corpus, tmp_path, tiny_encoder, lr=1e-3))} == {1e-3}


def test_a_shallower_encoder_keeps_its_first_layers_and_exports(session_corpus: Path, tiny_encoder: Path,
                                                                 exported_bert: Path, tmp_path: Path) -> None:
    """--encoder-layers 1 of the tiny 2-layer encoder: its first layer, pretrained weights and all, in
    the checkpoint and in the fused graph (whose check counts one Attention per layer)."""
    from transformers import AutoModel

    from tagger.train.bert import pretrained

    whole = AutoModel.from_pretrained(str(tiny_encoder))
    encoder, _ = pretrained(str(tiny_encoder), (w for words in WORDS for w in words), 0, 0.0, 64, layers=1)
    assert len(encoder.encoder.layer) == encoder.config.num_hidden_layers == 1
    for (name, kept), (_, first) in zip(encoder.encoder.layer[0].named_parameters(), whole.encoder.layer[0].named_parameters()):
        assert torch.equal(kept, first), name
    out = tmp_path / "run"
    trained = train_tiny(tiny_bert_config(session_corpus, out, tiny_encoder, encoder_layers=1, epochs=2), out)
    checkpoint = load_checkpoint(trained.checkpoint)
    assert checkpoint["config"]["encoder_layers"] == 1
    assert json.loads(checkpoint["encoder_config"])["num_hidden_layers"] == 1
    report = quiet_export(trained.checkpoint, tmp_path / "shallow.onnx")
    assert sum(node.op_type == "Attention" for node in onnx.load(str(report.path)).graph.node) == 1
    assert len(Tagger(load_artifact(report.path)).tag(WORDS[:2])) == 2
    # `tagger info` says so, and says "all" of a file trained without the option
    assert describe(load_artifact(report.path))["encoder"] == f"{tiny_encoder}, fine-tuned, its first 1 layer"
    assert describe(load_artifact(exported_bert))["encoder"] == f"{tiny_encoder}, fine-tuned, all its layers"
    with pytest.raises(TaggerError, match="^--encoder-layers asks for layer 3 of an encoder with 2 layers; pass at most 2$"):
        pretrained(str(tiny_encoder), [], 0, 0.0, 64, layers=3)
    with pytest.raises(ValueError, match="encoder_layers must be 0"):
        tiny_bert_config(session_corpus, out, tiny_encoder, encoder_layers=-1)
    with pytest.raises(ValueError, match="encoder_layers is for --arch bert"):
        tiny_bert_config(session_corpus, out, tiny_encoder, arch="lstm", encoder_layers=1)


def test_an_unreachable_encoder_is_a_clear_error(session_corpus: Path, tmp_path: Path) -> None:
    from tagger.train.loop import train

    config = tiny_bert_config(session_corpus, tmp_path, "someone/no-such-encoder")
    with pytest.raises(TaggerError, match="could not load encoder 'someone/no-such-encoder'.*--encoder"):
        train(config)  # the Hub is offline in tests: the message says how to point at a local folder
    runner = CliRunner()
    done = runner.invoke(cli, ["train", "--arch", "bert", "--data", str(session_corpus), "--out", str(tmp_path),
                               "--encoder", str(tmp_path / "missing-folder/")])
    assert done.exit_code != 0 and "Traceback" not in done.output


def test_a_second_stage_starts_from_its_init_checkpoint_and_records_it(trained_bert: Trained, session_corpus: Path,
                                                                        tiny_encoder: Path, trained: Trained,
                                                                        tmp_path: Path) -> None:
    """--init: the first stage's weights, vocabulary and shape (not the options given), its data in the provenance."""
    import io

    from rich.console import Console

    from tagger.render import info_table

    first = load_checkpoint(trained_bert.checkpoint)
    out = tmp_path / "stage2"
    # A rate too small to move any weight, and shape options the checkpoint overrides.
    config = tiny_bert_config(session_corpus, out, tiny_encoder, init=str(trained_bert.checkpoint), epochs=1,
                              lr=1e-12, encoder_layers=1, vocab_top_k=3, max_pieces=32)
    second = load_checkpoint(train_tiny(config, out).checkpoint)
    assert second["state_dict"].keys() == first["state_dict"].keys()
    for name, weight in first["state_dict"].items():
        assert torch.allclose(second["state_dict"][name], weight, atol=1e-6), name
    assert second["vocab"] == first["vocab"] and second["encoder_config"] == first["encoder_config"]
    for key in ("encoder_layers", "vocab_top_k", "max_pieces", "crf", "document_context"):
        assert second["config"][key] == first["config"][key], key
    assert second["config"]["init"] == str(trained_bert.checkpoint)
    init = second["data"]["init"]
    assert init["checkpoint"] == "best_bert.pth" and init["training_corpora"] == first["data"]["training_corpora"]
    report = quiet_export(Path(out / "best_bert.pth"), tmp_path / "stage2.onnx")
    facts = describe(load_artifact(report.path))
    assert facts["training_data"]["init"] == init
    console = Console(file=io.StringIO(), width=300, color_system=None)
    console.print(info_table(facts))
    assert "continued from best_bert.pth, trained on benjamin/ner-uk train (3 sentences)" in console.file.getvalue()
    # refused: a BiLSTM checkpoint, --init for a BiLSTM
    with pytest.raises(TaggerError, match=r"--init .*: a lstm checkpoint; --init takes one written by `tagger train --arch bert`"):
        train_tiny(tiny_bert_config(session_corpus, out, tiny_encoder, init=str(trained.checkpoint)), out)
    with pytest.raises(ValueError, match="init is for --arch bert"):
        tiny_bert_config(session_corpus, out, tiny_encoder, arch="lstm", init=str(trained_bert.checkpoint))


def test_a_second_stage_on_another_scheme_keeps_the_encoder_and_learns_a_new_classifier(
        trained_bert: Trained, session_corpus: Path, tiny_encoder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(session_corpus, other)
    (other / "labels.txt").write_text("\n".join([*LABELS, "B-DATE", "I-DATE"]) + "\n", encoding="utf-8")
    out = tmp_path / "stage2"
    second = load_checkpoint(train_tiny(tiny_bert_config(other, out, tiny_encoder, init=str(trained_bert.checkpoint),
                                                         epochs=1, lr=1e-12), out).checkpoint)
    first = load_checkpoint(trained_bert.checkpoint)
    assert second["labels"] == [*LABELS, "B-DATE", "I-DATE"] and second["data"]["init"]["labels"] == LABELS
    assert second["state_dict"]["scores.weight"].shape[0] == len(LABELS) + 2
    encoder = [k for k in first["state_dict"] if k.startswith("encoder.")]
    assert encoder and all(torch.allclose(second["state_dict"][k], first["state_dict"][k], atol=1e-6) for k in encoder)
