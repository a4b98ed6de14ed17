"""What a user without the training extra gets: tagging works, train/export say how to install."""

from __future__ import annotations

import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

# The [train] extra's packages (and torch's own companions): left out of the test virtualenv.
TRAINING = {"torch", "torchgen", "functorch", "triton", "nvidia", "onnx", "datasets", "transformers",
            "safetensors", "matplotlib", "onnxscript"}
RUN = "import sys; from tagger.cli import main; sys.argv[0] = 'tagger'; main()"


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv holding this one's packages (tagger included) except torch and the training extra."""
    folder = tmp_path_factory.mktemp("no-torch") / "venv"
    venv.create(folder, with_pip=False)
    python = folder / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip())
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        name = entry.name.split("-")[0].split(".")[0].lower()
        if name not in TRAINING and not (target / entry.name).exists():
            (target / entry.name).symlink_to(entry)
    assert subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode != 0
    return python


@pytest.mark.parametrize("command", [["train", "--arch", "lstm"], ["export", "best_lstm.pth"]])
def test_train_and_export_without_the_extra_say_how_to_install(no_torch: Path, command: list[str]) -> None:
    result = subprocess.run([str(no_torch), "-c", RUN, *command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'tagger[train]'" in lines[0] and "is missing" in lines[0], lines


def test_tagging_needs_no_torch(no_torch: Path, exported: Path) -> None:
    code = ("import sys, tagger; nlp = tagger.load(model=sys.argv[1]);"
            " print(len(nlp('Тарас Шевченко народився в Моринцях.'))); assert 'torch' not in sys.modules")
    result = subprocess.run([str(no_torch), "-c", code, str(exported)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 1


def test_training_code_installs_inside_the_package() -> None:
    import tagger.export.onnx
    import tagger.train.loop

    assert Path(tagger.train.loop.__file__).parent.name == "train"
    assert Path(tagger.export.onnx.__file__).parent.name == "export"
    top_level = {p.name for p in Path(sysconfig.get_paths()["purelib"]).iterdir()}
    assert "train" not in top_level and "export" not in top_level
