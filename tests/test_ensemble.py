"""Averaging models: forward-backward marginals (checked by enumeration), the ensemble, its CLI and defaults."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import LABELS, WORDS
from tagger.artifact import load_artifact
from tagger.cli import cli
from tagger.decode import Decoder
from tagger.ensemble import Ensemble
from tagger.errors import ArtifactError, TaggerError
from tagger.predict import Tagger, marginals_all
from tagger.shipped import shipped_models

CHAIN = ["O", "B-A", "I-A", "B-B", "I-B"]


def brute_force_marginals(decoder: Decoder, emissions: np.ndarray) -> np.ndarray:
    """P(label at t) by summing exp(score) over every label sequence of one sentence."""
    length, num_labels = emissions.shape
    probs = np.zeros((length, num_labels))
    for path in itertools.product(range(num_labels), repeat=length):
        score = decoder.start[path[0]] + decoder.end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
        score += sum(decoder.transitions[a, b] for a, b in zip(path, path[1:]))
        probs[np.arange(length), path] += np.exp(np.float64(score))
    return probs / probs[0].sum()


def test_log_marginals_equal_enumeration_over_all_label_sequences() -> None:
    rng = np.random.default_rng(0)
    n = len(CHAIN)
    decoder = Decoder(CHAIN, rng.normal(size=(n, n)).astype(np.float32), rng.normal(size=n).astype(np.float32),
                      rng.normal(size=n).astype(np.float32))
    lengths = [4, 1, 3]  # padded to 4: the padding must not leak into shorter sentences
    emissions = rng.normal(scale=2.0, size=(3, 4, n)).astype(np.float32)
    got = np.exp(decoder.log_marginals(emissions, lengths))
    for b, length in enumerate(lengths):
        np.testing.assert_allclose(got[b, :length], brute_force_marginals(decoder, emissions[b, :length]), atol=1e-5)
        np.testing.assert_allclose(got[b, :length].sum(axis=1), 1.0, atol=1e-5)
    assert got[:, 0, CHAIN.index("I-A")].max() < 1e-6  # IOB2: no sentence starts inside an entity


def test_marginals_of_a_long_sentence_stay_finite_and_normalised() -> None:
    emissions = np.random.default_rng(1).normal(scale=30.0, size=(1, 2000, len(CHAIN))).astype(np.float32)
    probs = np.exp(marginals_all(Decoder(CHAIN), [emissions[0], np.zeros((0, 0), np.float32)])[0])
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


@pytest.fixture(scope="module")
def members(exported: Path, exported_bert: Path) -> list[Tagger]:
    """The tiny BiLSTM and the tiny BERT of the session: one language, one label set, two families."""
    return [Tagger(load_artifact(path, "cpu")) for path in (exported, exported_bert)]


def test_an_ensemble_averages_its_members_probabilities(members: list[Tagger]) -> None:
    ensemble = Ensemble(members)
    each = [[np.exp(m) for m in marginals_all(t.decoder, t.emit(WORDS, None))] for t in members]
    for k, got in enumerate(ensemble.emit(WORDS, None)):
        mean = (each[0][k] + each[1][k]) / 2
        np.testing.assert_allclose(np.exp(got), mean, atol=1e-5)
        assert not np.allclose(mean, each[0][k], atol=1e-3)  # both members count: neither alone is the mean
        assert not np.allclose(mean, each[1][k], atol=1e-3)
    assert ensemble.labels == LABELS and ensemble.language == members[0].language
    assert ensemble.name == f"{members[0].name} + {members[1].name}"
    twice = members[0].artifact.path
    assert Ensemble([members[0], members[0]]).name == f"{twice} + {twice}"  # same names: whole paths tell them apart


def test_weights_scale_each_members_share(members: list[Tagger]) -> None:
    ensemble = Ensemble(members, [3, 1])  # normalised to 0.75 / 0.25
    each = [[np.exp(m) for m in marginals_all(t.decoder, t.emit(WORDS, None))] for t in members]
    for k, got in enumerate(ensemble.emit(WORDS, None)):
        np.testing.assert_allclose(np.exp(got), 0.75 * each[0][k] + 0.25 * each[1][k], atol=1e-5)
    assert ensemble.name == f"{members[0].name}×0.75 + {members[1].name}×0.25"
    with pytest.raises(TaggerError, match="1 weight for 2 models; give one weight per model"):
        Ensemble(members, [1.0])
    for bad in ([1.0, 0.0], [1.0, -1.0], [1.0, float("nan")], [1.0, float("inf")]):
        with pytest.raises(TaggerError, match="each must be a positive finite number"):
            Ensemble(members, bad)
    assert Ensemble(members, [1e308, 1e308]).weights == [0.5, 0.5]  # a sum past float range still normalises


def test_an_ensemble_tags_in_batches_as_one_by_one_and_keeps_empty_sentences(members: list[Tagger]) -> None:
    sentences = [*WORDS, [], WORDS[0]]
    ensemble = Ensemble(members)
    batched = ensemble.tag(sentences)
    assert batched == [ensemble.tag([s])[0] for s in sentences]
    assert [len(t) for t in batched] == [len(s) for s in sentences]


def test_an_ensemble_refuses_models_of_another_language_or_label_set(members: list[Tagger]) -> None:
    def stranger(language: str, labels: list[str]) -> SimpleNamespace:
        return SimpleNamespace(artifact=SimpleNamespace(language=language, labels=labels, path=Path("other.onnx")))

    with pytest.raises(ArtifactError, match="other.onnx is a 'en' model but .* average models of one language"):
        Ensemble([members[0], stranger("en", LABELS)])  # type: ignore[list-item]
    with pytest.raises(ArtifactError, match="other.onnx has other labels than .* average models of one label set"):
        Ensemble([members[0], stranger(members[0].language, LABELS[:3])])  # type: ignore[list-item]
    with pytest.raises(ArtifactError, match="at least one model"):
        Ensemble([])


def test_repeated_model_options_tag_and_evaluate_with_the_average(exported: Path, exported_bert: Path,
                                                                   session_corpus: Path) -> None:
    """`--model a --model b [--weights]`: the CLI tags and scores with the Ensemble of the two."""
    runner = CliRunner()
    pair = ["--model", str(exported), "--model", str(exported_bert)]
    text = "".join(" ".join(words) + "\n" for words in WORDS)
    done = runner.invoke(cli, ["tag", *pair, "--format", "conll"], input=text)
    assert done.exit_code == 0, done.output
    assert f"{exported.name} + {exported_bert.name} (lstm+bert," in done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("# source")]
    blocks = [[line.split("\t") for line in block.splitlines()] for block in "\n".join(lines).split("\n\n") if block]
    words, tags = [[w for w, _ in b] for b in blocks], [[t for _, t in b] for b in blocks]
    assert words == WORDS  # one sentence per line, as written
    ensemble = Ensemble([Tagger(load_artifact(p, "cpu")) for p in (exported, exported_bert)])
    assert tags == ensemble.tag(words, [1] * len(words))  # stdin is one document
    done = runner.invoke(cli, ["evaluate", *pair, "--weights", "2,1", "--data", str(session_corpus), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["model"] == f"{exported.name}×0.667 + {exported_bert.name}×0.333"
    single = ["--model", str(exported)]
    for args, problem in (
        ([*pair, "--weights", "0.6;0.4"], "give numbers separated by commas"),
        ([*pair, "--weights", "1,2,3"], "3 weights for 2 models"),
        ([*pair, "--weights", ""], "give numbers separated by commas"),
        ([*single, "--weights", "-1"], "each must be a positive finite number"),  # one model: still checked
        ([*single, "--arch", "bert"], "--arch bert picks a shipped model, --model a file of yours"),
    ):
        done = runner.invoke(cli, ["tag", *args], input=text)
        assert done.exit_code == 1 and "Traceback" not in done.output, done.output
        (line,) = done.stderr.strip().splitlines()  # refused before any model loads: only the error
        assert problem in line, line


def test_shipped_choices_name_existing_files_and_refuse_unknown_languages() -> None:
    for lang in ("uk", "en"):
        for arch in ("bert", "lstm"):
            (path,), weights = shipped_models(lang, arch)
            assert path.name == f"{lang}_{arch}.onnx" and path.is_file() and weights == [1.0]
        paths, weights = shipped_models(lang, "bert+lstm")
        assert [p.name for p in paths] == [f"{lang}_bert.onnx", f"{lang}_lstm.onnx"] and weights == [0.6, 0.4]
    paths, weights = shipped_models("uk", "bert+uk13")  # a family's file joins its language's choices
    assert [p.name for p in paths] == ["uk_bert.onnx", "uk13_bert.onnx"] and weights == [0.5, 0.5]
    with pytest.raises(TaggerError, match="no shipped bert\\+uk13 model for language 'en'"):
        shipped_models("en", "bert+uk13")
    with pytest.raises(TaggerError, match="no shipped .* model for language 'xx'.*pass --model"):
        shipped_models("xx")


def test_an_install_missing_one_member_falls_back_to_the_model_it_has(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import tagger.shipped as shipped_module

    (tmp_path / "uk_lstm.onnx").write_bytes(b"")
    monkeypatch.setattr(shipped_module, "assets_folder", lambda: tmp_path)
    assert shipped_models("uk") == ([tmp_path / "uk_lstm.onnx"], [1.0])  # no uk_bert: neither the pair nor BERT
    with pytest.raises(TaggerError, match="no shipped bert\\+lstm model for language 'uk'"):
        shipped_models("uk", "bert+lstm")


TYPES13 = ["ORG", "PERS", "LOC", "MON", "PCT", "DATE", "TIME", "PERIOD", "JOB", "DOC", "QUANT", "ART", "MISC"]
LABELS13 = ["O", *(f"{p}-{t}" for t in TYPES13 for p in "BI")]


def test_ner_uk_2_types_project_onto_ner_uk_types_and_nothing_else() -> None:
    from tagger.corpus import type_projection
    from tagger.scheme import projection_matrix

    types = type_projection(TYPES13[::-1], ["PERS", "ORG", "LOC", "MISC"])  # sets of types: any order
    assert types == {"PERS": "PERS", "ORG": "ORG", "LOC": "LOC", "ART": "MISC", "DOC": "MISC", "MISC": "MISC"}
    assert type_projection(["PERS", "ORG", "LOC", "MISC"], TYPES13) is None  # 4 types can't be read as 13
    assert type_projection(TYPES13, ["person", "location"]) is None
    matrix = projection_matrix(LABELS13, LABELS, types)
    np.testing.assert_array_equal(matrix.sum(axis=1), 1.0)  # probabilities stay probabilities
    read = {source: LABELS[int(np.argmax(row))] for source, row in zip(LABELS13, matrix)}
    assert read["B-ART"] == "B-MISC" and read["I-DOC"] == "I-MISC" and read["I-ORG"] == "I-ORG"
    assert read["B-DATE"] == read["I-JOB"] == read["O"] == "O"  # no such entity in the 4-type scheme


class Scheme13:
    """A stand-in 13-type tagger of fixed random scores under a random CRF chain."""

    def __init__(self, language: str, sentences: list[list[str]]) -> None:
        rng = np.random.default_rng(7)
        n = len(LABELS13)
        self.labels = LABELS13
        self.artifact = SimpleNamespace(language=language, labels=LABELS13, path=Path("uk13.onnx"))
        self.decoder = Decoder(LABELS13, rng.normal(size=(n, n)).astype(np.float32),
                               rng.normal(size=n).astype(np.float32), rng.normal(size=n).astype(np.float32))
        self.decoders = [self.decoder]
        self.scores = {tuple(s): rng.normal(scale=2.0, size=(len(s), n)).astype(np.float32) for s in sentences}

    # read as a Tagger of one head reads its scores
    heads, probabilities, entity_scores = Tagger.heads, Tagger.probabilities, Tagger.entity_scores

    def emit(self, sentences: list[list[str]], runs: object = None) -> list[np.ndarray]:
        return [self.scores[tuple(s)] for s in sentences]


def test_a_member_of_ner_uk_2_joins_through_its_types_and_scores_entities_exactly(members: list[Tagger]) -> None:
    short = [s[:3] for s in WORDS]  # three words: every path of 27 labels can be enumerated
    other = Scheme13(members[0].language, short)
    ensemble = Ensemble([members[0], other], [0.5, 0.5])  # type: ignore[list-item]
    assert ensemble.labels == LABELS  # the first member's labels
    own = [np.exp(m) for m in marginals_all(members[0].decoder, members[0].emit(short, None))]
    theirs = [np.exp(m) for m in marginals_all(other.decoder, other.emit(short))]
    misc = [LABELS13.index(f"B-{t}") for t in ("ART", "DOC", "MISC")]
    dropped = [LABELS13.index(f"{p}-{t}") for t in ("MON", "PCT", "DATE", "TIME", "PERIOD", "JOB", "QUANT") for p in "BI"]
    tags, scores = ensemble.tag_scored(short)
    for k, got in enumerate(ensemble.emit(short, None)):
        mine = np.exp(got)
        np.testing.assert_allclose(mine[:, LABELS.index("B-MISC")],
                                   0.5 * own[k][:, LABELS.index("B-MISC")] + 0.5 * theirs[k][:, misc].sum(axis=1), atol=1e-5)
        np.testing.assert_allclose(mine[:, 0], 0.5 * own[k][:, 0] + 0.5 * theirs[k][:, [0, *dropped]].sum(axis=1), atol=1e-5)
    # Each entity's score: half the first member's probability of it, half the sum of the 13-type
    # member's probabilities of that span as each type that reads as its label, by enumeration.
    from tagger.predict import span_scores
    from tagger.scheme import tags_to_spans

    first = span_scores(members[0].decoder, LABELS, members[0].emit(short, None), tags)
    sources = {"PERS": ["PERS"], "ORG": ["ORG"], "LOC": ["LOC"], "MISC": ["ART", "DOC", "MISC"]}
    found = 0
    for k, sentence in enumerate(short):
        exact = brute_force_span_probabilities(other.decoder, other.scores[tuple(sentence)], tags_to_spans(tags[k]), sources)
        np.testing.assert_allclose(scores[k], [0.5 * a + 0.5 * b for a, b in zip(first[k], exact)], atol=1e-5)
        found += len(exact)
    assert found, "no entity was scored"


def brute_force_span_probabilities(decoder: Decoder, emissions: np.ndarray, spans: list, sources: dict) -> list[float]:
    """P(the span is exactly one entity of a type reading as its label), summing every label sequence."""
    length, n = emissions.shape
    total, hits = 0.0, [0.0] * len(spans)
    for path in itertools.product(range(n), repeat=length):
        score = decoder.start[path[0]] + decoder.end[path[-1]] + sum(emissions[t, y] for t, y in enumerate(path))
        weight = float(np.exp(np.float64(score + sum(decoder.transitions[a, b] for a, b in zip(path, path[1:])))))
        total += weight
        tags = [LABELS13[y] for y in path]
        for j, span in enumerate(spans):
            for kind in sources[span.label]:
                if (tags[span.start] == f"B-{kind}" and all(t == f"I-{kind}" for t in tags[span.start + 1 : span.end])
                        and (span.end == length or tags[span.end] != f"I-{kind}")):
                    hits[j] += weight
    return [h / total for h in hits]
