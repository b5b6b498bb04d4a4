"""The recipe inside every PNG the explorer hands out, and regenerating an image from it.

A recipe is one JSON tEXt chunk (key "ganforge-recipe"): the run (name and the folder it was served
from), the checkpoint step, the SHA-256 of the generator's weights, the whole request the image came
from (see request.py) and the image's index in it (and its stage, for two-stage runs). Regeneration
replays the whole request on the CPU and takes that image, so it gets exactly the batch the server
computed, and refuses weights whose hash differs.

An image made from a projection (`ganforge serve --projection`) gets no recipe: its z lives in the
projection's folder, not in the request. It carries a note saying so instead, which read_recipe gives
as its refusal.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from PIL import Image, PngImagePlugin

from ..errors import GanforgeError
from ..report.grids import image_grid
from .render import Explorer
from .request import RequestError, decode_json, parse_request

KEY = "ganforge-recipe"
NOTE_KEY = "ganforge-note"
FROM_PROJECTION = ("made from a projection, whose z no recipe holds; make it again with "
                   "`ganforge serve RUN --projection DIR`")
FORMAT = 1


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What each field must hold, checked on reading: a recipe is text in a file anyone can edit.
FIELDS = {
    "run": (lambda value: isinstance(value, str), "a run name"),
    "run_path": (lambda value: isinstance(value, str), "a folder path"),
    "step": (_whole, "a checkpoint step"),
    "generator_sha256": (lambda value: isinstance(value, str), "a SHA-256 in hex"),
    "request": (lambda value: isinstance(value, dict), "a request object"),
    "index": (_whole, "a whole number from 0"),
    "stage": (lambda value: _whole(value) and value in (1, 2), "1 or 2"),
}


def make_recipe(explorer: Explorer, request_dict: dict, index: int, stage: int) -> dict:
    run = explorer.run
    return {"format": FORMAT, "run": run.path.name, "run_path": explorer.run_path, "step": run.step,
            "generator_sha256": explorer.digest, "request": request_dict, "index": index, "stage": stage}


def png_bytes(image: torch.Tensor, recipe: dict | None = None, note: str | None = None) -> bytes:
    """uint8 (C, H, W) → PNG bytes, with the recipe (or a note on why there is none) as a tEXt chunk."""
    info = PngImagePlugin.PngInfo()
    if recipe is not None:
        info.add_text(KEY, json.dumps(recipe, sort_keys=True))
    if note is not None:
        info.add_text(NOTE_KEY, note)
    out = io.BytesIO()
    # zlib level 1: small generated images barely compress further, and it encodes faster than the default 6
    image_grid(image[None], nrow=1, padding=0).save(out, format="PNG", pnginfo=info, compress_level=1)
    return out.getvalue()


def read_recipe(path: str | Path) -> dict:
    try:
        with Image.open(path) as image:
            chunks = image.text if hasattr(image, "text") else {}
    except (OSError, ValueError) as err:
        raise GanforgeError(f"cannot read {path} as an image ({err}); give a PNG downloaded from `ganforge serve`") from None
    text = chunks.get(KEY)
    if text is None and NOTE_KEY in chunks:
        raise GanforgeError(f"{path} carries no recipe: it was {chunks[NOTE_KEY][:300]}")
    if text is None:
        raise GanforgeError(f"{path} carries no ganforge recipe; give a PNG downloaded from `ganforge serve`")
    try:
        recipe = decode_json(text)
    except RequestError as err:
        raise GanforgeError(f"the recipe in {path} is damaged ({err}); download the image again") from None
    if not isinstance(recipe, dict):
        raise GanforgeError(f"the recipe in {path} is damaged (not a JSON object); download the image again")
    if recipe.get("format") != FORMAT:
        raise GanforgeError(f"{path} has recipe format {recipe.get('format')!r:.40}; this ganforge reads {FORMAT}")
    missing = [key for key in FIELDS if key not in recipe]
    if missing:
        raise GanforgeError(f"the recipe in {path} lacks {', '.join(missing)}; download the image again")
    for key, (valid, what) in FIELDS.items():
        if not valid(recipe[key]):
            raise GanforgeError(f"the recipe in {path} has {key} {recipe[key]!r:.40}, not {what}; "
                                f"download the image again")
    return recipe


def regenerate(recipe: dict, run_dir: str | Path | None = None) -> torch.Tensor:
    """The uint8 (C, H, W) image a recipe describes, on the CPU; `run_dir` overrides where the run is."""
    from ..run import load_run

    folder = Path(run_dir) if run_dir else Path(recipe["run_path"])
    if not folder.is_dir():
        raise GanforgeError(f"run folder {folder} of the recipe is not here; give the run with --run RUN")
    explorer = Explorer(load_run(folder, checkpoint=str(recipe["step"])))
    if explorer.digest != recipe["generator_sha256"]:
        raise GanforgeError(f"the generator weights of {folder} at step {recipe['step']} differ from the recipe's "
                            f"(sha256 {recipe['generator_sha256'][:12]}…, found {explorer.digest[:12]}…); "
                            f"give the run the image came from with --run RUN")
    try:
        request = parse_request(recipe["request"])
    except RequestError as err:
        raise GanforgeError(f"the recipe's request is damaged ({err}); download the image again") from None
    if not 0 <= recipe["index"] < request.count:
        raise GanforgeError(f"the recipe's index {recipe['index']} is outside its batch of {request.count}")
    rendered = explorer.render(request)
    if recipe["stage"] == 1 and rendered.stage1 is None:
        raise GanforgeError(f"the recipe asks for stage 1, but {folder} has one stage")
    return (rendered.stage1 if recipe["stage"] == 1 else rendered.images)[recipe["index"]]
