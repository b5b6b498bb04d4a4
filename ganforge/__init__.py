"""ganforge: train, evaluate and compare GANs from one command, or from Python:

    run = ganforge.train("shapes-tags", steps=200, out="runs/x")   # or load_run("runs/x")
    ganforge.save_grid(run.sample(16, seed=0, psi=0.7, tags="red, star"), "grid.png")
    walk = run.interpolate([1, 2, 3], frames=30)                   # uint8 (61, C, H, W)
    ganforge.evaluate(run, metrics="fid", n=2000)

Each function imports its module when called: importing ganforge imports no torch (the CLI starts fast).
"""
from .version import __version__


def load_run(path, checkpoint: str = "latest", device="cpu"):
    """Read a run directory (see ganforge/run.py): config, generator, history."""
    from .run import load_run as _load_run

    return _load_run(path, checkpoint=checkpoint, device=device)


def train(config=None, *, resume=None, set=None, **overrides):
    """Train a run and return it loaded; config: a preset name, YAML path, Config or dict; overrides: top-level
    keys (steps=20, out="runs/x", model={"width": 16}); set: dotted keys ({"model.width": 16}). See api.train."""
    from .api import train as _train

    return _train(config, resume=resume, set=set, **overrides)


def evaluate(source, ref=None, metrics=None, n=None, **options) -> dict:
    """What `ganforge eval` computes, of a run (directory or Run), folder, dataset spec or uint8 tensor,
    kept in a run's history as it does. See api.evaluate."""
    from .api import evaluate as _evaluate

    return _evaluate(source, ref=ref, metrics=metrics, n=n, **options)


def save_grid(images, path, nrow=None):
    """Write uint8 (or float in [-1, 1]) images N×C×H×W as one grid picture. See api.save_grid."""
    from .api import save_grid as _save_grid

    return _save_grid(images, path, nrow=nrow)


def __getattr__(name):
    if name == "Run":  # the class of load_run's result, imported (with torch) only when asked for
        from .run import Run

        return Run
    raise AttributeError(f"module 'ganforge' has no attribute {name!r}")


__all__ = ["__version__", "Run", "evaluate", "load_run", "save_grid", "train"]
