"""One document model, two renderers: every block class has a function in each, and the HTML page and
the Markdown file carry the same content (text, tables, pictures) in the same order."""
import html
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from ganforge.report import document, html as html_renderer, markdown as markdown_renderer
from ganforge.report.document import Cell, Details, Heading, Paragraph, Picture, Table, fmt, render_blocks
from ganforge.report.html import render_html
from ganforge.report.markdown import render_markdown


@pytest.fixture
def doc(tmp_path):
    picture = tmp_path / "report" / "curves.png"
    picture.parent.mkdir()
    Image.new("RGB", (4, 4), "red").save(picture)
    return [Heading("Study <a & b>", 1),
            Paragraph("fid ↓: x leads, within noise (one seed): no ★."),
            Table(["variant", "fid ↓", "samples"],
                  [[Cell("objective=dcgan"), Cell("12.5", best=True), Cell("seed 0", picture)],
                   [Cell("a|b"), Cell("—"), Cell("missing", tmp_path / "nope.png")]]),
            Picture(picture, "Training curves"),
            Details("traceback of m", "Traceback:\n  raise RuntimeError('boom')")]


class _Texts(HTMLParser):
    """The text runs of an HTML page's body, and its image alt texts, in order."""

    def __init__(self):
        super().__init__()
        self.texts, self._in_head = [], False

    def handle_starttag(self, tag, attrs):
        self._in_head |= tag == "head"
        if tag == "img":
            self.texts.append(dict(attrs)["alt"])

    def handle_endtag(self, tag):
        self._in_head &= tag != "head"

    def handle_data(self, data):
        if data.strip() and not self._in_head:
            self.texts.append(data.strip())


def _block_texts(doc) -> list[str]:
    """What each block says, in order: the content both renderers must carry."""
    texts = []
    for block in doc:
        if isinstance(block, Table):
            texts += block.header
            texts += [cell.text for row in block.rows for cell in row]
        elif isinstance(block, Picture):
            texts.append(block.caption)
        elif isinstance(block, Details):
            texts += [block.summary, block.text]
        else:
            texts.append(block.text)
    return texts


def _in_order(needles: list[str], haystack: str) -> bool:
    at = 0
    for needle in needles:
        at = haystack.find(needle, at)
        if at < 0:
            return False
        at += len(needle)
    return True


def test_every_renderer_has_a_function_for_every_block():
    for renderers in (html_renderer.RENDERERS, markdown_renderer.RENDERERS):
        assert set(renderers) == set(document.BLOCKS)
    with pytest.raises(TypeError, match="no function for Details"):
        render_blocks([], {cls: str for cls in document.BLOCKS if cls is not Details})


def test_html_and_markdown_carry_the_same_content_in_the_same_order(doc, tmp_path):
    page, text = render_html(doc), render_markdown(doc, tmp_path)
    expected = _block_texts(doc)

    parser = _Texts()
    parser.feed(page)
    html_text = "\n".join(parser.texts)
    assert _in_order(expected, html_text), html_text
    assert html.unescape(re.search(r"<title>(.*)</title>", page).group(1)) == "Study <a & b>"

    # Markdown escapes a table cell's pipes and folds its newlines; a details block keeps its text as is.
    md_expected = [t.replace("|", "\\|") if t == "a|b" else t for t in expected]
    assert _in_order(md_expected, text), text

    # The same marks on both sides: the best cell starred, pictures and the missing one.
    assert page.count("★") == text.count("★") == 2  # the paragraph's and the best cell's
    assert '<td class="best">12.5 ★' in page and "**12.5** ★" in text
    assert page.count("data:image/png;base64,") == 2 and "(image missing)" in page  # inlined: opens offline
    assert "](report/curves.png)" in text and "](nope.png)" in text  # relative to the document's folder
    assert len(re.findall(r"^\| --- \|", text, re.M)) == 1 and page.count("<table>") == 1


def test_numbers_read_alike_in_every_format():
    assert [fmt(v) for v in (None, float("nan"), 3, 0.123456, 12345.6)] == ["—", "—", "3", "0.1235", "12,346"]


def test_report_imports_no_training_or_study_code():
    """report/ only renders: the trainer and studies import it, never the other way round."""
    import subprocess
    import sys

    code = ("import sys, ganforge.report, ganforge.report.html, ganforge.report.markdown; "
            "print(sorted(m for m in sys.modules if m.startswith(('ganforge.training', 'ganforge.study'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
