"""What a page may ask the server for, checked before any generation: every field typed and bounded.

A request names a run by its id (never a path) and describes a batch of images completely:
    {"seed": S, "count": N, "psi": ψ, "condition": C}        image i from seed S + i
    {"seed": S, "psi": ψ, "condition": C,                     image i between seed S (condition C)
     "interpolate": {"seed": S2, "condition": C2, "ts": [t…]}} and seed S2 (condition C2) at t_i
C is null (draw conditions like the training data), {"class": "7"}, {"tags": {"mountain": 0.6,
"lake": 0.3}} or {"text": "a small blue circle"}. Either end may be {"projection": P} instead of a seed
and condition: the z and condition of the run's projection P (`ganforge serve --projection`, numbered
by the server from 0); a plain request for one is one image (count 1). The canonical form
(`Request.to_dict`) is what a recipe stores, so regenerating an image replays exactly the batch it came
from; a request with a projection gets no recipe (recipe.py).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ..errors import GanforgeError
from ..models.latent import MAX_PSI

MAX_COUNT = 64
MAX_SEED = 2 ** 53 - 1  # what a browser's numbers hold exactly
MAX_TEXT = 300
MAX_TAGS = 64
MAX_PROJECTIONS = 1000  # far past any page's list; the run's own count is checked when rendering
MAX_DIGITS = 100  # far past any field's range, far below Python's 4,300-digit limit on int("…")


class RequestError(GanforgeError):
    """A request the server refuses (HTTP 400); the message names the field and what it accepts."""


def _whole_number(text: str) -> int:
    if len(text) > MAX_DIGITS:
        raise ValueError(f"a number of {len(text):,} digits; no field takes over {MAX_DIGITS}")
    return int(text)


def decode_json(data: bytes | str):
    """JSON text → Python values; RequestError with the reason for text that is not JSON (or not UTF-8),
    nests deeper than the parser recurses, or holds a number too long to be any field's value."""
    try:
        return json.loads(data, parse_int=_whole_number)
    except RecursionError:
        raise RequestError("it is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        raise RequestError(str(err)) from None


def integer(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(f"{name} must be a whole number from {low} to {high}, got {value!r:.40}")
    if not low <= value <= high:
        raise RequestError(f"{name} must be from {low} to {high}, got {value}")
    return value


def number(value, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{name} must be a number from {low:g} to {high:g}, got {value!r:.40}")
    if not low <= value <= high:
        raise RequestError(f"{name} must be from {low:g} to {high:g}, got {value:g}")
    return float(value)


def parse_condition(value, name: str = "condition") -> dict | None:
    """null, or exactly one of class / tags / text, shape-checked; vocabulary checks happen per run."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise RequestError(f"{name} must be null or one of {{\"class\": …}}, {{\"tags\": {{…}}}}, "
                           f"{{\"text\": …}}, got {str(value)[:80]!r}")
    (kind, asked), = value.items()
    if kind == "class":
        if isinstance(asked, bool) or not isinstance(asked, (str, int)) or not str(asked).strip():
            raise RequestError(f"{name}.class must be a class name or index, got {asked!r:.40}")
        return {"class": str(asked).strip()}
    if kind == "tags":
        if not isinstance(asked, dict) or not 1 <= len(asked) <= MAX_TAGS:
            raise RequestError(f"{name}.tags must map 1 to {MAX_TAGS} tag names to weights, "
                               f"e.g. {{\"mountain\": 0.6, \"lake\": 0.3}}")
        tags = {}
        for tag, weight in asked.items():
            if not tag.strip() or any(c in tag for c in ",=:\t\n"):
                raise RequestError(f"{name}.tags has a malformed tag name {tag[:40]!r}")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
                raise RequestError(f"the weight of tag '{tag[:40]}' must be a number, got {weight!r:.40}")
            tags[tag.strip()] = float(weight)  # its range is the tag syntax's, checked when the run encodes it
        if not any(weight > 0 for weight in tags.values()):
            raise RequestError(f"{name}.tags gives no tag a weight above 0; raise one, or ask for no condition")
        return {"tags": tags}
    if kind == "text":
        if not isinstance(asked, str) or not asked.strip() or len(asked) > MAX_TEXT:
            raise RequestError(f"{name}.text must be a prompt of 1 to {MAX_TEXT} characters")
        return {"text": asked.strip()}
    raise RequestError(f"{name} has an unknown kind '{kind}'; use class, tags or text")


def _end(fields: dict) -> dict:
    """One end's canonical fields: its projection, or its seed and condition."""
    if fields["projection"] is not None:
        return {"projection": fields["projection"]}
    return {"seed": fields["seed"], "condition": fields["condition"]}


@dataclass(frozen=True)
class Interpolation:
    seed: int
    condition: dict | None
    ts: tuple[float, ...]
    projection: int | None = None  # this end's projection; when set, seed (0) and condition (None) are unused

    def to_dict(self) -> dict:
        return {**_end(vars(self)), "ts": list(self.ts)}


@dataclass(frozen=True)
class Request:
    seed: int
    count: int
    psi: float
    condition: dict | None
    interpolate: Interpolation | None = None
    projection: int | None = None  # this end's projection; when set, seed (0) and condition (None) are unused

    @property
    def uses_projection(self) -> bool:
        return self.projection is not None or (self.interpolate is not None
                                               and self.interpolate.projection is not None)

    def to_dict(self) -> dict:
        out = {**_end(vars(self)), "count": self.count, "psi": self.psi}
        if self.interpolate:
            out["interpolate"] = self.interpolate.to_dict()
        return out


FIELDS = {"run", "seed", "count", "psi", "condition", "interpolate", "projection"}


def _projection(fields: dict, name: str) -> int | None:
    """A checked projection number, or None; a projection replaces its end's seed and condition."""
    if "projection" not in fields:
        return None
    if "seed" in fields or fields.get("condition") is not None:
        raise RequestError(f"{name}projection replaces {name}seed and {name}condition (a projection has its own "
                           f"z and condition); leave them out")
    return integer(fields["projection"], f"{name}projection", 0, MAX_PROJECTIONS - 1)


def parse_request(body) -> Request:
    """A Request from decoded JSON; RequestError names the first bad field."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    unknown = set(body) - FIELDS
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(FIELDS))}")
    projection = _projection(body, "")
    seed = integer(body.get("seed", 0), "seed", 0, MAX_SEED)
    psi = number(body.get("psi", 1.0), "psi (truncation ψ)", 0.0, MAX_PSI)
    condition = parse_condition(body.get("condition"))
    between = body.get("interpolate")
    if between is None:
        count = integer(body.get("count", 1), "count", 1, MAX_COUNT)
        if projection is not None and count != 1:
            raise RequestError(f"a projection is one image: count must be 1 or left out, got {count}")
        if seed + count - 1 > MAX_SEED:
            raise RequestError(f"seed + count must stay below {MAX_SEED + 1}")
        return Request(seed, count, psi, condition, None, projection)
    if not isinstance(between, dict) or set(between) - {"seed", "condition", "ts", "projection"}:
        raise RequestError("interpolate must be an object with seed, condition and ts, or projection and ts")
    ts = between.get("ts")
    if not isinstance(ts, list) or not 1 <= len(ts) <= MAX_COUNT:
        raise RequestError(f"interpolate.ts must be a list of 1 to {MAX_COUNT} positions from 0 to 1")
    ts = tuple(number(t, "each interpolate.ts position", 0.0, 1.0) for t in ts)
    if "count" in body and body["count"] != len(ts):
        raise RequestError(f"count ({body['count']!r:.40}) must equal the number of interpolate.ts ({len(ts)}), or be left out")
    end = Interpolation(integer(between.get("seed", seed), "interpolate.seed", 0, MAX_SEED),
                        parse_condition(between.get("condition"), "interpolate.condition"), ts,
                        _projection(between, "interpolate."))
    return Request(seed, len(ts), psi, condition, end, projection)

