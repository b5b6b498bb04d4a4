"""The Markdown renderer of the document model: images referenced by paths relative to the folder
the document is written to (`root`), so the page reads on a code host beside its figures."""
from __future__ import annotations

import html
import os
from functools import partial
from pathlib import Path
from urllib.parse import quote

from .document import Block, Cell, Details, Heading, Paragraph, Picture, Table, render_blocks


def _text(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _path(path: Path, root: Path) -> str:
    return quote(Path(os.path.relpath(path, root)).as_posix(), safe="/=,+-._")


def _cell(cell: Cell, root: Path) -> str:
    text = _text(cell.text)
    if cell.best:
        text = f"**{text}** ★"
    if cell.image is not None:
        text = f"![{_text(cell.text)}]({_path(cell.image, root)})<br>{text}"
    return text


def _heading(block: Heading, root: Path) -> str:
    return "#" * block.level + " " + block.text


def _paragraph(block: Paragraph, root: Path) -> str:
    return block.text


def _table(block: Table, root: Path) -> str:
    lines = ["| " + " | ".join(_text(h) for h in block.header) + " |", "|" + " --- |" * len(block.header)]
    lines += ["| " + " | ".join(_cell(c, root) for c in row) + " |" for row in block.rows]
    return "\n".join(lines)


def _picture(block: Picture, root: Path) -> str:
    return f"![{block.caption}]({_path(block.path, root)})"


def _details(block: Details, root: Path) -> str:
    return f"<details><summary>{html.escape(block.summary)}</summary>\n\n```\n{block.text}\n```\n</details>"


RENDERERS = {Heading: _heading, Paragraph: _paragraph, Table: _table, Picture: _picture, Details: _details}


def render_markdown(doc: list[Block], root: Path) -> str:
    renderers = {cls: partial(render, root=root) for cls, render in RENDERERS.items()}
    return "\n\n".join(render_blocks(doc, renderers)) + "\n"
