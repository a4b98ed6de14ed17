"""A PNG of the training curves (loss and validation F1 per epoch)."""

from __future__ import annotations

from pathlib import Path

from tagger.atomic import atomic_path


def plot_curves(path: Path, losses: list[float], val_f1: list[float], title: str) -> None:
    """Write loss and F1 per epoch side by side, atomically."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    epochs = list(range(1, len(losses) + 1))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, losses, marker="o", markersize=3)
    left.set(title="training loss", xlabel="epoch", ylabel="CRF negative log-likelihood")
    right.plot(epochs, val_f1, marker="o", markersize=3, color="tab:green")
    best = max(range(len(val_f1)), key=val_f1.__getitem__) if val_f1 else None
    if best is not None:
        right.scatter([best + 1], [val_f1[best]], color="tab:red", zorder=3, label=f"best {val_f1[best]:.3f}")
        right.legend(loc="lower right")
    right.set(title="validation entity micro F1", xlabel="epoch", ylabel="F1")
    fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(fig)
