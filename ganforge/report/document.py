"""One document model for everything ganforge writes as a page (a study's report.html and report.md):
a list of blocks, each rendered by the renderer of the chosen format (report/html.py,
report/markdown.py), which maps every block class to one function."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Union

@dataclass
class Cell:
    text: str = ""
    image: Path | None = None
    best: bool = False


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]


@dataclass
class Picture:
    path: Path
    caption: str


@dataclass
class Details:
    summary: str
    text: str


Block = Union[Heading, Paragraph, Table, Picture, Details]
BLOCKS: tuple[type, ...] = (Heading, Paragraph, Table, Picture, Details)


def render_blocks(doc: list[Block], renderers: dict[type, Callable[[Block], str]]) -> list[str]:
    """Each block rendered by its class's function; a renderer that misses a class fails here, by name."""
    missing = [cls.__name__ for cls in BLOCKS if cls not in renderers]
    if missing:
        raise TypeError(f"renderer has no function for {', '.join(missing)}")
    return [renderers[type(block)](block) for block in doc]


def fmt(value) -> str:
    """4 significant digits; large numbers (images/s) whole, with thousands separators."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
