"""ganforge: train, evaluate and compare GANs from one command."""
__version__ = "0.1.0"


def load_run(path, checkpoint: str = "latest", device="cpu"):
    """Read a run directory (see ganforge/run.py): config, generator, history."""
    from .run import load_run as _load_run

    return _load_run(path, checkpoint=checkpoint, device=device)


__all__ = ["__version__", "load_run"]
