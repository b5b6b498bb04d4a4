"""Where the FID Inception weights come from: a path, $GANFORGE_INCEPTION_WEIGHTS, or the cache
folder — and `fetch`, the one explicit, verified download. Nothing downloads implicitly.

The file is pytorch-fid's release asset (also re-published by torch-fidelity under another name).
Its SHA-256, 6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2 (95,628,359 bytes),
is the one published for this URL in genforce/genforce (metrics/inception.py) and for
torch-fidelity's copy in several public projects; its first 8 hex digits are the "6726825d" in the
file name, torch.hub's naming convention (`check_hash` compares that suffix with the SHA-256 prefix).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from ..config import DatasetOptions
from ..data.cache import cache_root
from .errors import WeightsError

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{INCEPTION_FILE}"
INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
ENV_VAR = "GANFORGE_INCEPTION_WEIGHTS"


def weights_dir() -> Path:
    return cache_root(DatasetOptions()) / "weights"


def find_inception_weights(path: str | Path | None = None) -> Path:
    """The weights file to load: `path`, else $GANFORGE_INCEPTION_WEIGHTS, else the cache folder's copy."""
    for candidate, origin in ((path, "the given path"), (os.environ.get(ENV_VAR), f"${ENV_VAR}")):
        if candidate:
            candidate = Path(candidate).expanduser()
            if not candidate.is_file():
                raise WeightsError(f"Inception weights not found at {candidate} ({origin}); "
                                   f"run `ganforge fetch-weights inception` or give the path of {INCEPTION_FILE}")
            return candidate
    cached = weights_dir() / INCEPTION_FILE
    if cached.is_file():
        return cached
    raise WeightsError(f"no Inception weights ({INCEPTION_FILE} is not in {cached.parent}); run "
                       f"`ganforge fetch-weights inception`, or pass weights_path / set ${ENV_VAR} to the file")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str = INCEPTION_URL, sha256: str = INCEPTION_SHA256, out: str | Path | None = None,
          progress: bool = True) -> Path:
    """Download `url` to `out` (default: the cache folder), verify its SHA-256, then move it into place.

    A file already there with the right hash is kept; a download whose hash differs is deleted and
    reported, so a damaged or substituted file is never used.
    """
    from tqdm import tqdm

    target = Path(out).expanduser() if out else weights_dir() / url.rsplit("/", 1)[-1]
    if target.is_file() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    tmp, digest = Path(tmp_name), hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    f.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if digest.hexdigest() != sha256:
            raise WeightsError(f"download of {url} has SHA-256 {digest.hexdigest()}, expected {sha256}; "
                               f"it was deleted — try again, or fetch the file by hand and pass its path")
        os.replace(tmp, target)
    except OSError as err:
        raise WeightsError(f"could not download {url} ({err}); fetch it by hand into {target.parent} "
                           f"or set ${ENV_VAR}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target
