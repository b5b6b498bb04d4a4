"""Loss curves from a run's metrics history."""
from __future__ import annotations

from pathlib import Path

from ..fileio import write_atomic


def plot_losses(history: list[dict], path: str | Path) -> None:
    """D and G losses (top) and D's mean output on real and generated images (bottom) against step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = [row for row in history if "d_loss" in row]  # evaluation rows carry no losses
    steps = [row["step"] for row in history]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), dpi=100, sharex=True)
    top.plot(steps, [row["d_loss"] for row in history], label="D loss")
    top.plot(steps, [row["g_loss"] for row in history], label="G loss")
    top.set_ylabel("loss")
    top.legend(fontsize=8)
    bottom.plot(steps, [row["d_real"] for row in history], label="D(x)")
    bottom.plot(steps, [row["d_fake"] for row in history], label="D(G(z))")
    bottom.set_xlabel("generator step")
    bottom.set_ylabel("D output")
    bottom.legend(fontsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    # Written beside and renamed, so a viewer never sees a half-written file.
    write_atomic(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
