"""Shared by the serve tests: one tiny tag-conditional run per test session, and a server on a free port."""
import threading
from contextlib import contextmanager

from ganforge.cli import main
from ganforge.serve import ExplorerServer

TINY_TAGS = ["--data", "shapes", "--set", "condition=tags", "--steps", "20", "--batch-size", "16",
             "--set", "model.width=8", "--set", "model.z_dim=16", "--set", "dataset.size=256",
             "--set", "train.log_every=5", "--set", "train.sample_every=10", "--set", "model.ema_decay=0.99",
             "--quiet"]


def tag_run(tmp_path_factory):
    """A tag-conditional shapes run trained for 20 steps (a few seconds), shared by every serve test."""
    root = tmp_path_factory.getbasetemp() / "serve-tags"
    run = root / "run"
    if not (run / "checkpoints").is_dir():
        assert main(["train", "--out", str(run), "--set", f"dataset.cache_dir={root / 'cache'}", *TINY_TAGS]) == 0
    return run


def projection_of(run, folder, seed=0):
    """`ganforge project` of a noise picture into `run` (a few Adam steps: only its files matter), into `folder`."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    picture = folder / "picture.png"
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(picture)
    assert main(["project", str(run), str(picture), "--out", str(folder / "proj"), "--steps", "3", "--starts", "2",
                 "--seed", str(seed)]) == 0
    return folder / "proj"


@contextmanager
def running_server(run_dirs, projections=()):
    server = ExplorerServer(run_dirs, port=0, projections=projections)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
