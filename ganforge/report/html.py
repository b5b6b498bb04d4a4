"""The HTML renderer of the document model: one self-contained page (images inlined as base64 PNG,
inline CSS, no scripts), so a report opens offline and survives being mailed or moved."""
from __future__ import annotations

import base64
import html
from pathlib import Path

from .document import Block, Cell, Details, Heading, Paragraph, Picture, Table, render_blocks

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1400px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.best { background: #fff3c4; font-weight: bold; }
td img { display: block; max-width: 320px; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption, .caption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(cell: Cell, tag: str = "td") -> str:
    text = html.escape(cell.text) + (" ★" if cell.best else "")
    if cell.image is not None:
        image = (f'<img src="{_data_uri(cell.image)}" alt="{html.escape(cell.text)}">' if cell.image.is_file()
                 else "(image missing)")
        text = f'{image}<span class="caption">{text}</span>'
    return f'<{tag} class="best">{text}</{tag}>' if cell.best else f"<{tag}>{text}</{tag}>"


def _heading(block: Heading) -> str:
    return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"


def _paragraph(block: Paragraph) -> str:
    return f"<p>{html.escape(block.text)}</p>"


def _table(block: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _picture(block: Picture) -> str:
    return (f'<figure><img src="{_data_uri(block.path)}" alt="{html.escape(block.caption)}">'
            f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")


def _details(block: Details) -> str:
    return f"<details><summary>{html.escape(block.summary)}</summary><pre>{html.escape(block.text)}</pre></details>"


RENDERERS = {Heading: _heading, Paragraph: _paragraph, Table: _table, Picture: _picture, Details: _details}


def render_html(doc: list[Block]) -> str:
    title = next((b.text for b in doc if isinstance(b, Heading)), "ganforge study")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(render_blocks(doc, RENDERERS)) + "\n</body></html>\n")
