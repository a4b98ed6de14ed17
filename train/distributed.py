"""Training on several processes (`torchrun --nproc-per-node N`): ranks, their share of a batch, DDP.

Every rank builds the same epoch plan (same seed), takes its slice of each batch and weights its
mean loss by its slice's share, so the gradients DistributedDataParallel averages are those of the
whole batch: N processes take the same steps as one, up to numerics. Rank 0 alone validates,
writes checkpoints and prints; the others learn its decisions through a broadcast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from tagger.errors import TaggerError

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local: int = 0  # the rank on this machine: which GPU it drives

    @property
    def leader(self) -> bool:
        """Rank 0: validates, saves, prints."""
        return self.rank == 0

    def part(self, batch: Sequence[T]) -> list[T]:
        """This rank's slice of a batch (empty where the batch has fewer items than ranks)."""
        return list(batch[self.rank :: self.world])

    def total(self, value: float) -> float:
        """The sum of `value` over all ranks."""
        if self.world == 1:
            return value
        summed = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(summed)
        return float(summed.item())

    def shared(self, value: T) -> T:
        """Rank 0's `value`, on every rank."""
        if self.world == 1:
            return value
        box: list[Any] = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """What the loss runs the model through: DDP across ranks, else the model itself."""
        if self.world == 1:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def device_of(choice: str, ranks: Ranks) -> torch.device:
    """The torch device for `auto` / `cpu` / `cuda`; under torchrun, each rank's own GPU."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise TaggerError("--device cuda: torch sees no CUDA GPU; use --device cpu or auto")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and ranks.world > 1:
        if ranks.local >= torch.cuda.device_count():
            raise TaggerError(f"rank {ranks.rank} wants GPU {ranks.local} but torch sees"
                              f" {torch.cuda.device_count()}; pass --nproc-per-node at most that")
        torch.cuda.set_device(ranks.local)
        return torch.device("cuda", ranks.local)
    return torch.device(choice)


@contextmanager
def joined(choice: str) -> Iterator[Ranks]:
    """The ranks of this run: one process, or the group torchrun started (its WORLD_SIZE, RANK and
    LOCAL_RANK), joined with NCCL on GPUs and gloo on CPUs, and left at the end."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield Ranks()
        return
    ranks = Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    gpu = choice == "cuda" or (choice == "auto" and torch.cuda.is_available())
    dist.init_process_group("nccl" if gpu else "gloo")
    try:
        yield ranks
    finally:
        # Every rank leaves together: rank 0 still scores test and writes its files while the others
        # are done, and a gloo group torn down under a rank still in it can abort that process.
        dist.barrier()
        dist.destroy_process_group()
