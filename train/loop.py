"""The training loop: epochs, validation F1, early stopping, the best checkpoint and its curves."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tagger.atomic import write_text_atomic
from tagger.conll import Sentence
from tagger.corpus import corpus_of, local_folder
from tagger.errors import TaggerError
from tagger.metrics import EvalReport, score
from tagger.predict import tag_with
from tagger.scheme import entity_types
from tagger.train.checkpoint import FORMAT_VERSION, save_checkpoint
from tagger.train.config import TrainConfig
from tagger.train.data import label_names, load_corpus, to_sentences
from tagger.train.plot import plot_curves
from tagger.train.provenance import git_sha
from tagger.train.recipes import RECIPES, Recipe


@dataclass(frozen=True)
class TrainResult:
    """Where the best checkpoint went and how it scored."""

    checkpoint: Path
    best_epoch: int
    validation_f1: float
    test: EvalReport | None  # None if training was interrupted
    interrupted: bool


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str) -> torch.device:
    """The torch device for `auto` / `cpu` / `cuda`."""
    if device == "cuda" and not torch.cuda.is_available():
        raise TaggerError("--device cuda: torch sees no CUDA GPU; use --device cpu or auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def evaluate_model(recipe: Recipe, labels: list[str], sentences: list[Sentence]) -> EvalReport:
    """Entity-level scores with the current weights, decoded exactly as `tagger tag` decodes."""
    recipe.model.eval()
    pred = tag_with(recipe.emitter(), recipe.decoder(), labels, [s.words for s in sentences])
    return score([s.tags for s in sentences], pred, types=entity_types(labels))


def parity_examples(sentences: list[Sentence]) -> list[list[str]]:
    """A few real sentences of varied lengths, kept in the checkpoint for the export parity check."""
    by_length = sorted(sentences, key=lambda s: len(s.words))
    if not by_length:
        return []
    picks = {0, len(by_length) // 4, len(by_length) // 2, 3 * len(by_length) // 4, len(by_length) - 1}
    return [by_length[i].words for i in sorted(picks)]


def train(config: TrainConfig, console: Console | None = None) -> TrainResult:
    """Train a tagger of `config.arch`, keep the best checkpoint by validation F1, score it on test."""
    console = console or Console(stderr=True)
    out = Path(config.out)
    prepare_output(out)
    seed_everything(config.seed)
    device = pick_device(config.device)
    corpus = load_corpus(config.lang, config.data)
    labels = label_names(corpus["train"], config.lang)
    train_set = to_sentences(corpus["train"], labels)
    if config.max_train_sentences:
        train_set = train_set[: config.max_train_sentences]
    val_set = to_sentences(corpus["validation"], labels)
    test_set = to_sentences(corpus["test"], labels)
    if not train_set or not val_set:
        raise TaggerError("the train and validation splits must hold at least one sentence each")
    if config.train_on_validation:
        train_set = train_set + val_set  # validation F1 below is then a training-fit figure, not a held-out one
    recipe = RECIPES[config.arch](config, train_set, labels, device)
    model = recipe.model
    path = out / f"best_{config.arch}.pth"
    folder = local_folder(config.lang, config.data)
    corpus_info = corpus_of(config.lang)
    base: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "arch": config.arch,
        "config": config.to_dict(),
        "labels": labels,
        **recipe.checkpoint,
        "examples": parity_examples(val_set),
        "data": {
            "corpus": corpus_info.hub_name,
            "source": str(folder) if folder else f"hf:{corpus_info.hub_name}",
            "license": corpus_info.license,
            "sentences": {"train": len(train_set), "validation": len(val_set), "test": len(test_set)},
            "validation_held_out": not config.train_on_validation,
        },
        "git_sha": git_sha(),
        "torch_version": str(torch.__version__),
    }
    console.print(
        f"[bold]train[/] {config.arch} on {corpus_info.hub_name} ({len(train_set)} train /"
        f" {len(val_set)} validation sentences{', validation included in train' if config.train_on_validation else ''}),"
        f" {recipe.summary},"
        f" {sum(p.numel() for p in model.parameters() if p.requires_grad):,} trained parameters, device {device}"
    )
    rng = random.Random(config.seed)
    losses: list[float] = []
    val_f1s: list[float] = []
    best_f1, best_epoch, stale = -1.0, 0, 0
    interrupted = False
    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), console=console, transient=True,
    )
    try:
        with progress:
            for epoch in range(1, config.epochs + 1):
                started = time.monotonic()
                plan = recipe.plan(rng)
                task = progress.add_task("train", total=len(plan), epoch=epoch, loss=0.0)
                model.train()
                total = 0.0
                for step, batch in enumerate(plan, start=1):
                    loss = recipe.loss(batch)
                    recipe.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
                    recipe.optimizer.step()
                    if recipe.step_per_batch:
                        recipe.scheduler.step()
                    total += loss.item()
                    progress.update(task, advance=1, loss=total / step)
                progress.remove_task(task)
                lr = recipe.scheduler.get_last_lr()[0]
                if not recipe.step_per_batch:
                    recipe.scheduler.step()
                report = evaluate_model(recipe, labels, val_set)
                losses.append(total / len(plan))
                val_f1s.append(report.micro.f1)
                # Trained on validation, its F1 cannot pick an epoch: every epoch is kept over the last, so the
                # final one (end of the schedule) stays and patience never runs out.
                improved = report.micro.f1 > best_f1 or config.train_on_validation
                if improved:
                    best_f1, best_epoch, stale = report.micro.f1, epoch, 0
                    save_checkpoint(path, {**base, "state_dict": cpu_state(model),
                                           "metrics": {"epoch": epoch, "validation": report.to_json()}})
                else:
                    stale += 1
                console.print(
                    f"epoch {epoch:3d}  loss {losses[-1]:8.4f}  val F1 {report.micro.f1:.4f}"
                    f"  lr {lr:.2e}  {time.monotonic() - started:5.1f}s"
                    + ("  [green]★ saved[/]" if improved else "")
                )
                if stale >= config.patience:
                    console.print(f"no better validation F1 for {config.patience} epochs: stopping")
                    break
    except KeyboardInterrupt:
        interrupted = True
        where = f"{path} (epoch {best_epoch}, validation F1 {best_f1:.4f})" if best_epoch else "none saved yet"
        console.print(f"[yellow]interrupted[/]: the best checkpoint is intact: {where}", soft_wrap=True)
    if losses:
        plot_curves(path.with_name(f"best_{config.arch}_curves.png"), losses, val_f1s,
                    f"{config.arch} on {corpus_info.hub_name}")
    if interrupted or not best_epoch:
        return TrainResult(path, best_epoch, best_f1, None, True)
    return finish(path, base, recipe, labels, val_set, test_set, best_epoch,
                  {"loss": losses, "val_f1": val_f1s}, console)


def finish(path: Path, base: dict[str, Any], recipe: Recipe, labels: list[str], val_set: list[Sentence],
           test_set: list[Sentence], best_epoch: int, history: dict[str, list[float]], console: Console) -> TrainResult:
    """Reload the best weights, score validation and test, and store the scores with them."""
    from tagger.train.checkpoint import load_checkpoint

    best = load_checkpoint(path)
    recipe.model.load_state_dict(best["state_dict"])
    validation = evaluate_model(recipe, labels, val_set)
    test = evaluate_model(recipe, labels, test_set) if test_set else None
    metrics = {"epoch": best_epoch, "validation": validation.to_json(),
               "test": test.to_json() if test else None, "history": history}
    save_checkpoint(path, {**best, "metrics": metrics,
                           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_text_atomic(path.with_suffix(".metrics.json"), [json.dumps(metrics, indent=2)])
    write_text_atomic(path.with_suffix(".config.json"), [json.dumps(base["config"], indent=2)])
    seen = "" if base["data"].get("validation_held_out", True) else " (seen in training)"
    console.print(f"{'last' if seen else 'best'} epoch {best_epoch}: validation F1 {validation.micro.f1:.4f}{seen}"
                  + (f", test F1 {test.micro.f1:.4f}" if test else "") + f"; checkpoint {path}")
    return TrainResult(path, best_epoch, validation.micro.f1, test, False)


def cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights, on the CPU (a checkpoint loads anywhere)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def prepare_output(out: Path) -> None:
    """Create the output folder and prove it is writable before any work starts."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".tagger-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise TaggerError(f"{out}: cannot write the checkpoint there ({err.strerror}); pass --out DIR") from None
