"""A PNG of the training curves: loss terms per step and validation accuracy (normal vs 3D-ablated)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # no display here, and a training run must never need one
import matplotlib.pyplot as plt  # noqa: E402

from w2r2_training.run_files import atomic_path  # noqa: E402

Row = Mapping[str, float]


def plot_training_curves(train_rows: Sequence[Row], val_rows: Sequence[Row], path: Path) -> Path:
    """Draw loss terms (left) and val Acc@0.25 / Acc@0.5 normal and ablated (right) into ``path``.

    ``train_rows`` hold ``step`` plus ``loss/<term>`` columns; ``val_rows`` hold ``step`` plus
    ``val/<mode>/overall/acc@<k>`` columns, as the trainer logs them. The PNG is written to a
    temporary file and renamed, so a reader never sees half an image.
    """
    path = Path(path)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))

    loss_keys = sorted({k for row in train_rows for k in row if k.startswith("loss/")})
    for key in loss_keys:
        points = [(row["step"], row[key]) for row in train_rows if key in row]
        ax_loss.plot(*zip(*points), label=key.removeprefix("loss/"))
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("training loss terms")
    if loss_keys:
        ax_loss.legend(fontsize=8)

    acc_keys = sorted({k for row in val_rows for k in row if k.startswith("val/") and "/overall/acc@" in k})
    for key in acc_keys:
        points = [(row["step"], row[key]) for row in val_rows if key in row]
        style = "--" if "/ablated/" in key else ":" if "/oracle/" in key else "-"
        ax_acc.plot(*zip(*points), style, marker="o", markersize=3, label=key.removeprefix("val/"))
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(0.0, 1.0)
    ax_acc.set_title("validation (dashed: 3D ablated, dotted: proposal oracle)")
    if acc_keys:
        ax_acc.legend(fontsize=8)

    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
    finally:
        plt.close(fig)
    return path
