"""The same tags on a CPU without VNNI: the code run under an emulated AVX2-only x86-64 (qemu-user).

CI's CPU may have VNNI or AMX, where ONNX Runtime's integer kernels never saturate, so a test run
there alone cannot show what an AVX2 laptop or cloud VM computes. `qemu-x86_64` with a Haswell CPU
model (AVX2 + FMA, no AVX-512, no VNNI) makes ONNX Runtime pick its AVX2 kernels whatever the host:
the probe below proves it does (its 255 x 127 product saturates there, as on a real AVX2 EPYC), and
then models tagged natively and emulated must give the same entities. Skipped where qemu-user is
not installed (`apt-get install qemu-user`; `.ci/run` installs it). The emulator runs the graphs
~1000x slower than the host, so the texts are short.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Trained, quiet_export
from tagger.artifact import load_artifact
from tagger.shipped import shipped_files

QEMU = shutil.which("qemu-x86_64")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from emulated_eval import emulated_command  # noqa: E402  the one place the emulated CPU is spelled out
EMULATED_SECONDS = 900  # a ceiling: a start-up is ~2-4 s emulated, one sentence through BERT ~15 s

pytestmark = pytest.mark.skipif(QEMU is None or platform.machine() != "x86_64" or sys.platform != "linux",
                                reason="needs qemu-user on x86-64 Linux (apt-get install qemu-user)")

SENTENCES = {
    "uk": "Президент України Володимир Зеленський відвідав Львів. Київський національний університет імені"
          " Тараса Шевченка розташований у Києві.",
    "en": "Tim Cook visited London today with @Microsoft and the New York Yankees",
}


def run(args: list[str], stdin: str = "", emulated: bool = False) -> str:
    """stdout of `python ARGS` in this interpreter, natively or on the emulated AVX2-only CPU."""
    command = [sys.executable, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(emulated_command(command, QEMU or "qemu-x86_64") if emulated else command,
                          input=stdin.encode(), capture_output=True, cwd=ROOT, env=env, timeout=EMULATED_SECONDS,
                          check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout.decode()


Tagged = tuple[list[tuple[int, int, str]], list[float]]


def entities(jsonl: str) -> Tagged:
    """((start, end, label) of every entity, their scores) in `tagger tag --format jsonl` output."""
    found = [e for line in jsonl.splitlines() for e in json.loads(line)["entities"]]
    return [(e["start"], e["end"], e["label"]) for e in found], [e["score"] for e in found]


def tag(model: Path, lang: str, emulated: bool) -> Tagged:
    args = ["-m", "tagger", "tag", "--model", str(model), "--lang", lang, "--device", "cpu", "--format", "jsonl"]
    return entities(run(args, SENTENCES[lang], emulated))


def assert_alike(model: Path, lang: str) -> None:
    """The same entities natively and emulated; scores equal but for float rounding (FMA vs AVX-512 sums)."""
    (spans, scores), (emulated_spans, emulated_scores) = tag(model, lang, False), tag(model, lang, True)
    assert spans, f"{model.name} found nothing in {SENTENCES[lang]!r}: the comparison would mean nothing"
    assert emulated_spans == spans
    assert max(abs(a - b) for a, b in zip(scores, emulated_scores)) < 1e-3, (scores, emulated_scores)


def test_the_emulated_cpu_takes_the_saturating_avx2_kernel() -> None:
    """Without this, the comparisons below could run on a VNNI path and prove nothing."""
    emulated = run(["scripts/avx2_probe.py"], emulated=True)
    assert "1,048,544" in emulated and "saturated" in emulated, emulated


@pytest.fixture(scope="module")
def tiny_int8(trained: Trained, session_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh INT8 export of the tiny BiLSTM."""
    out = tmp_path_factory.mktemp("emulated") / "tiny_int8.onnx"
    return quiet_export(trained.checkpoint, out, quantize="int8", data=str(session_corpus)).path


def test_a_fresh_int8_export_tags_alike_on_the_emulated_avx2_cpu(tiny_int8: Path) -> None:
    assert_alike(tiny_int8, "uk")


SHIPPED = shipped_files()


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_models_tag_alike_on_the_emulated_avx2_cpu(path: Path) -> None:
    lang = load_artifact(path, "cpu").language
    assert_alike(path, lang)
