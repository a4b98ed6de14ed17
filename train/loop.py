"""The training loop: epochs, validation F1, early stopping, the best checkpoint and its curves."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tagger.atomic import write_text_atomic
from tagger.conll import Sentence
from tagger.errors import TaggerError
from tagger.header import joined_licenses
from tagger.metrics import EvalReport, score
from tagger.predict import tag_with
from tagger.scheme import entity_types
from tagger.train.checkpoint import CHECKPOINT_VERSION, BertCheckpoint, save_checkpoint
from tagger.train.config import TrainConfig
from tagger.train.data import Splits, load_splits
from tagger.train.distributed import Ranks, device_of, joined
from tagger.train.plot import plot_curves
from tagger.train.provenance import git_sha
from tagger.train.recipes import RECIPES, BertRecipe, Recipe


@dataclass(frozen=True)
class TrainResult:
    """Where the best checkpoint went and how it scored."""

    checkpoint: Path
    best_epoch: int
    validation_f1: float
    test: EvalReport | None  # None if training was interrupted
    interrupted: bool


@dataclass
class Run:
    """A training run between its steps: what it reads, what it trains, where the best goes."""

    config: TrainConfig
    splits: Splits
    recipe: Recipe
    base: dict[str, Any]  # every checkpoint field but the weights and scores
    path: Path
    ranks: Ranks
    console: Console


@dataclass
class History:
    """What fitting left: the curves, the best epoch and whether it was cut short."""

    losses: list[float] = field(default_factory=list)
    val_f1s: list[float] = field(default_factory=list)
    best_f1: float = -1.0
    best_epoch: int = 0
    interrupted: bool = False


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate_model(recipe: Recipe, sentences: list[Sentence]) -> EvalReport:
    """Entity-level scores with the current weights, decoded exactly as `tagger tag` decodes."""
    recipe.model.eval()
    pred = tag_with(recipe.emitter(), recipe.decoder(), recipe.labels, [s.words for s in sentences])
    return score([s.tags for s in sentences], pred, types=entity_types(recipe.labels))


def parity_examples(sentences: list[Sentence]) -> list[list[str]]:
    """A few real sentences of varied lengths, kept in the checkpoint for the export parity check."""
    by_length = sorted(sentences, key=lambda s: len(s.words))
    if not by_length:
        return []
    picks = {0, len(by_length) // 4, len(by_length) // 2, 3 * len(by_length) // 4, len(by_length) - 1}
    return [by_length[i].words for i in sorted(picks)]


def train(config: TrainConfig, console: Console | None = None) -> TrainResult:
    """Train a tagger of `config.arch`, keep the best checkpoint by validation F1, score it on test.

    Under `torchrun --nproc-per-node N` the N processes share every epoch (see `train.distributed`).
    """
    with joined(config.device) as ranks:
        console = (console or Console(stderr=True)) if ranks.leader else Console(quiet=True)
        if ranks.leader:
            prepare_output(Path(config.out))
        config, first = with_init(config)
        run = build(config, load(config), ranks, console, first)
        history = fit(run)
        if not ranks.leader:
            return TrainResult(run.path, history.best_epoch, history.best_f1, None, history.interrupted)
        if history.losses:
            plot_curves(run.path.with_name(f"best_{config.arch}_curves.png"), history.losses, history.val_f1s,
                        f"{config.arch} on {run.splits.names}")
        if history.interrupted or not history.best_epoch:
            return TrainResult(run.path, history.best_epoch, history.best_f1, None, True)
        return finish(run, history)


def load(config: TrainConfig) -> Splits:
    """The corpus's splits as the config asks for them (a prefix of train, validation added)."""
    splits = load_splits(config.lang, config.data, config.extra_train, config.extra_documents, config.documents)
    if not splits.train or not splits.validation:
        raise TaggerError("the train and validation splits must hold at least one sentence each")
    train_set = splits.train[: config.max_train_sentences or None]
    if config.train_on_validation:
        train_set = train_set + splits.validation  # validation F1 is then a training-fit figure, not a held-out one
    return replace(splits, train=train_set)


# What a second stage takes from its --init checkpoint: the model's shape, which its weights fix.
INIT_SHAPE = ("encoder", "encoder_layers", "vocab_top_k", "max_pieces", "document_context", "crf")


def with_init(config: TrainConfig) -> tuple[TrainConfig, BertCheckpoint | None]:
    """`config` with the model shape of its --init checkpoint, and that checkpoint (read once: the
    recipe starts from it); (config, None) without --init."""
    if not config.init:
        return config, None
    from tagger.train.checkpoint import load_checkpoint

    first = load_checkpoint(config.init)
    if first["arch"] != "bert":
        raise TaggerError(f"--init {config.init}: a {first['arch']} checkpoint; --init takes one written by"
                          " `tagger train --arch bert`")
    shape = {k: first["config"][k] for k in INIT_SHAPE if k in first["config"]}
    return replace(config, **shape), first


def init_record(path: str, first: BertCheckpoint) -> dict[str, Any]:
    """What the checkpoint at `path` was trained on, as the second stage records it (it learned from both)."""
    data = first.get("data", {})
    return {"checkpoint": Path(path).name, "labels": list(first["labels"]),
            "corpus": data.get("corpus"), "sentences": data.get("sentences"),
            "validation_held_out": data.get("validation_held_out"), "training_corpora": data.get("training_corpora"),
            "epoch": first.get("metrics", {}).get("epoch"), "trained_at": first.get("created", ""),
            **{k: data[k] for k in ("init", "teachers") if data.get(k)}}  # a third stage keeps what the first learned from


def check_start(start: dict[str, Any], splits: Splits, option: str = "--init") -> None:
    """Refuse a first stage (or a teacher: `option`) that learned from what this run selects or is
    scored on: --data's own validation split, or a corpus whose train split holds documents of
    --data's (`tagger.corpus.LEAKS`); what it learned from in turn (its own first stage or teachers) too."""
    from tagger.corpus import KNOWN, LEAKS

    folder = {name: c.folder for c in KNOWN.values() for name in (c.hub_name, c.folder) if name}
    main = folder.get(splits.corpora[0]["corpus"], splits.corpora[0]["corpus"])
    corpora = start.get("training_corpora")
    if corpora is None and start.get("corpus"):  # a record from before training_corpora: its main corpus
        corpora = [{"corpus": start["corpus"]}]
    if corpora is None:
        raise TaggerError(f"{option} {start['checkpoint']}: its record does not say what it was trained on, so"
                          " it cannot be checked against this run's validation and test splits; use a model"
                          " trained by `tagger train` (its header keeps its data)")
    for record in corpora:
        learned = folder.get(record["corpus"], record["corpus"])
        if learned == main and start.get("validation_held_out") is False:
            raise TaggerError(f"{option} {start['checkpoint']}: it was trained on {record['corpus']}'s validation"
                              " split, which this run selects on; use a model trained with validation held out")
        if (learned, main) in LEAKS:
            raise TaggerError(f"{option} {start['checkpoint']}: it learned from {record['corpus']}, and"
                              f" {LEAKS[learned, main]}; never train on a split you score on")
    for earlier in ([start["init"]] if start.get("init") else []) + list(start.get("teachers") or []):
        check_start({**earlier, "checkpoint": start["checkpoint"]}, splits, option)


def build(config: TrainConfig, splits: Splits, ranks: Ranks, console: Console,
          first: BertCheckpoint | None = None) -> Run:
    """The seeded arch's recipe on this rank's device (from `first`, the --init checkpoint, if given),
    and the checkpoint fields it will carry."""
    start = init_record(config.init, first) if first is not None else None
    if start is not None:
        check_start(start, splits)
    teacher = None
    if config.teacher:
        from tagger.train.distill import load_teacher

        teacher = load_teacher(config.teacher, config.teacher_weights, splits.labels, config.device)
        for record in teacher.records:
            check_start(record, splits, "--teacher")
        # Minutes on a CPU for a large training set: say so before the silence.
        console.print(f"[bold]teacher[/] {teacher.name} labels the {len(splits.train):,} training sentences once")
    seed_everything(config.seed)
    device = device_of(config.device, ranks)
    recipe = (BertRecipe(config, splits.train, splits.labels, device, first, teacher) if config.arch == "bert"
              else RECIPES[config.arch](config, splits.train, splits.labels, device))
    recipe.forward = ranks.wrap(recipe.model, device)
    main = splits.corpora[0]  # the corpus validation and test come from
    # A student learns what its teachers learned, under their data's licenses too.
    licenses = joined_licenses([*(c["license"] for c in splits.corpora),
                                *(r["license"] for r in (teacher.records if teacher else []) if r.get("license"))])
    base: dict[str, Any] = {
        "format_version": CHECKPOINT_VERSION, "arch": config.arch, "config": config.to_dict(), "labels": splits.labels,
        **recipe.checkpoint,
        "examples": parity_examples(splits.validation),
        "data": {
            "corpus": main["corpus"],
            "source": main["source"],
            "license": licenses,
            "sentences": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
            "validation_held_out": not config.train_on_validation,
            "training_corpora": splits.corpora,
            **({"init": start} if start else {}),
            **({"teachers": teacher.records} if teacher else {}),
        },
        "git_sha": git_sha(),
        "torch_version": str(torch.__version__),
    }
    trained = sum(p.numel() for p in recipe.model.parameters() if p.requires_grad)
    console.print(
        f"[bold]train[/] {config.arch} on {splits.names} ({len(splits.train)} train /"
        f" {len(splits.validation)} validation sentences"
        f"{f', documents {config.documents}*' if config.documents else ''}"
        f"{f', from {config.init}' if config.init else ''}"
        f"{f', taught by {teacher.name} ({config.distill:g} of the loss)' if teacher else ''}"
        f"{', validation included in train' if config.train_on_validation else ''}), {recipe.summary},"
        f" {trained:,} trained parameters, device {device}" + (f", {ranks.world} processes" if ranks.world > 1 else "")
    )
    return Run(config, splits, recipe, base, Path(config.out) / f"best_{config.arch}.pth", ranks, console)


def fit(run: Run) -> History:
    """Epochs until the schedule ends or validation F1 stops improving; the best epoch is saved as it comes."""
    history = History()
    rng = random.Random(run.config.seed)  # the same on every rank: all ranks plan the same batches
    progress = Progress(
        TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), console=run.console, transient=True,
    )
    try:
        with progress:
            for epoch in range(1, run.config.epochs + 1):
                started = time.monotonic()
                loss, lr = epoch_loss(run, run.recipe.plan(rng), progress, epoch)
                if run.ranks.shared(validate(run, history, epoch, loss, lr, time.monotonic() - started)):
                    break
    except KeyboardInterrupt:
        history.interrupted = True
        where = (f"{run.path} (epoch {history.best_epoch}, validation F1 {history.best_f1:.4f})"
                 if history.best_epoch else "none saved yet")
        run.console.print(f"[yellow]interrupted[/]: the best checkpoint is intact: {where}", soft_wrap=True)
    history.best_epoch, history.best_f1 = run.ranks.shared((history.best_epoch, history.best_f1))
    return history


def epoch_loss(run: Run, plan: list[list[Any]], progress: Progress, epoch: int) -> tuple[float, float]:
    """One epoch of steps: the mean loss over its batches (summed over ranks' shares), and the learning rate."""
    recipe, ranks = run.recipe, run.ranks
    task = progress.add_task("train", total=len(plan), epoch=epoch, loss=0.0)
    recipe.model.train()
    total = 0.0
    for step, batch in enumerate(plan, start=1):
        mine = ranks.part(batch)
        # Each rank's mean loss weighted by its slice's share of the batch: the gradients DDP averages over
        # ranks (hence the factor `world`) are the whole batch's. A rank without a slice still runs one item
        # at weight 0, as every rank must join every gradient exchange.
        share = recipe.size(mine) / recipe.size(batch) if mine else 0.0
        loss = recipe.loss(mine or batch[:1]) * share
        recipe.optimizer.zero_grad(set_to_none=True)
        (loss * ranks.world).backward()
        torch.nn.utils.clip_grad_norm_(recipe.model.parameters(), run.config.clip)
        recipe.optimizer.step()
        if recipe.step_per_batch:
            recipe.scheduler.step()
        total += loss.item()
        progress.update(task, advance=1, loss=total / step)
    progress.remove_task(task)
    lr = recipe.scheduler.get_last_lr()[0]
    if not recipe.step_per_batch:
        recipe.scheduler.step()
    return ranks.total(total) / len(plan), lr


def validate(run: Run, history: History, epoch: int, loss: float, lr: float, seconds: float) -> bool:
    """Score validation, save the epoch if it is the best so far; whether to stop (rank 0 decides)."""
    if not run.ranks.leader:
        return False  # its answer is replaced by rank 0's
    started = time.monotonic()
    report = evaluate_model(run.recipe, run.splits.validation)
    history.losses.append(loss)
    history.val_f1s.append(report.micro.f1)
    # Trained on validation, its F1 cannot pick an epoch; with --keep-last it must not (the held-out copy
    # of such a recipe): every epoch is kept over the last, so the final one stays and patience never runs out.
    improved = report.micro.f1 > history.best_f1 or run.config.train_on_validation or run.config.keep_last
    if improved:
        history.best_f1, history.best_epoch = report.micro.f1, epoch
        save_checkpoint(run.path, {**run.base, "state_dict": cpu_state(run.recipe.model),
                                   "metrics": {"epoch": epoch, "validation": report.to_json()}})
    run.console.print(
        f"epoch {epoch:3d}  loss {loss:8.4f}  val F1 {report.micro.f1:.4f}"
        f"  lr {lr:.2e}  {seconds:5.1f}s train + {time.monotonic() - started:.1f}s val"
        + ("  [green]★ saved[/]" if improved else ""), soft_wrap=True,
    )
    if epoch - history.best_epoch >= run.config.patience:
        run.console.print(f"no better validation F1 for {run.config.patience} epochs: stopping")
        return True
    return False


def finish(run: Run, history: History) -> TrainResult:
    """Reload the best weights, score validation and test, and store the scores with them."""
    from tagger.train.checkpoint import load_checkpoint

    path, recipe = run.path, run.recipe
    best = load_checkpoint(path)
    recipe.model.load_state_dict(best["state_dict"])
    validation = evaluate_model(recipe, run.splits.validation)
    test = evaluate_model(recipe, run.splits.test) if run.splits.test else None
    metrics = {"epoch": history.best_epoch, "validation": validation.to_json(),
               "test": test.to_json() if test else None,
               "history": {"loss": history.losses, "val_f1": history.val_f1s}}
    save_checkpoint(path, {**best, "metrics": metrics,
                           "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    write_text_atomic(path.with_suffix(".metrics.json"), [json.dumps(metrics, indent=2)])
    write_text_atomic(path.with_suffix(".config.json"), [json.dumps(run.base["config"], indent=2)])
    seen = "" if run.base["data"].get("validation_held_out", True) else " (seen in training)"
    which = "last" if seen or run.config.keep_last else "best"
    run.console.print(f"{which} epoch {history.best_epoch}: validation F1"
                      f" {validation.micro.f1:.4f}{seen}" + (f", test F1 {test.micro.f1:.4f}" if test else "")
                      + f"; checkpoint {path}")
    return TrainResult(path, history.best_epoch, validation.micro.f1, test, False)


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
