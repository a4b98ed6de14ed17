"""`torchrun --nproc-per-node 2 -m tagger train`: two CPU processes (gloo) train as one process does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import Trained, tiny_bert_config, tiny_config, train_tiny  # noqa: E402
from tagger.train.checkpoint import load_checkpoint  # noqa: E402
from tagger.train.config import TrainConfig  # noqa: E402
from tagger.train.distributed import Ranks  # noqa: E402


def cli_options(config: TrainConfig) -> list[str]:
    """`tagger train` options that rebuild `config` (its fields map one-to-one onto options)."""
    options = []
    for name, value in config.to_dict().items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            options += [flag] if value else []
        elif isinstance(value, list):  # a repeatable option
            options += [part for item in value for part in (flag, str(item))]
        elif value is not None:
            options += [flag, str(value)]
    return options


def torchrun(config: TrainConfig, processes: int = 2) -> subprocess.CompletedProcess[str]:
    """`tagger train` under torchrun on this machine's CPUs, one thread per process."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "tagger", "train", *cli_options(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def assert_same_run(one: Path, two: Path) -> None:
    """The same weights, curves and scores, up to float32 summation order."""
    a, b = load_checkpoint(one), load_checkpoint(two)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, weight in a["state_dict"].items():
        assert torch.allclose(weight.float(), b["state_dict"][key].float(), atol=1e-4), key
    assert b["metrics"]["history"]["loss"] == pytest.approx(a["metrics"]["history"]["loss"], abs=1e-5)
    assert b["metrics"]["history"]["val_f1"] == a["metrics"]["history"]["val_f1"]
    assert b["metrics"]["epoch"] == a["metrics"]["epoch"]
    assert b["metrics"]["test"] == a["metrics"]["test"]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_the_ranks_slices_cover_a_batch_once_and_their_shares_sum_to_one(world: int) -> None:
    batch = list(range(5))
    parts = [Ranks(rank, world).part(batch) for rank in range(world)]
    assert sorted(item for part in parts for item in part) == batch
    assert sum(len(part) for part in parts) / len(batch) == 1.0
    assert Ranks(world - 1, world).part([0]) == ([0] if world == 1 else [])  # the last rank may get nothing


def test_two_gloo_processes_train_the_tiny_bert_as_one_process_does(
    trained_bert: Trained, session_corpus: Path, tiny_encoder: Path, tmp_path: Path
) -> None:
    """Three windows in one batch of 8: rank 0 takes two and rank 1 one, and the step is still the batch's."""
    config = tiny_bert_config(session_corpus, tmp_path, tiny_encoder)
    assert config == trained_bert.config.__class__(**{**trained_bert.config.to_dict(), "out": str(tmp_path)})
    done = torchrun(config)
    assert "2 processes" in done.stderr
    assert done.stderr.count("★ saved") == trained_bert.log.count("★ saved")  # rank 0 alone saves and prints
    assert_same_run(trained_bert.checkpoint, tmp_path / "best_bert.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in trained_bert.out.iterdir())


def test_a_rank_without_a_slice_joins_the_step_at_weight_zero(session_corpus: Path, tmp_path: Path) -> None:
    """Batches of 2 over 3 sentences: in every epoch one batch has a single sentence and rank 1 none."""
    alone = train_tiny(tiny_config(session_corpus, tmp_path / "one", batch_size=2, epochs=12), tmp_path / "one")
    torchrun(tiny_config(session_corpus, tmp_path / "two", batch_size=2, epochs=12))
    assert_same_run(alone.checkpoint, tmp_path / "two" / "best_lstm.pth")
