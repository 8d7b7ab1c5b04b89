"""tasks/report_html.py: the page a user opens holds no script of any kind, its figures inlined as
data URIs, and whatever a value holds shows as text (the browser's view of it:
tests/pipeline/test_report_browser.py, tests/pipeline/test_html_escaping.py)."""

from __future__ import annotations

import base64

from tasks.report_html import figure_links, sanitize, to_html

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8  # bytes are inlined as they are, never decoded


def test_the_page_has_no_script_and_inlines_each_figure():
    text = (
        "# Title\n\nSome *text*.\n\n![loss](figures/loss.png)\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n"
    )
    page = to_html(text, "A <report>", {"figures/loss.png": PNG})
    assert "<script" not in page.lower()
    assert "<title>A &lt;report&gt;</title>" in page
    assert f'src="data:image/png;base64,{base64.b64encode(PNG).decode()}"' in page
    assert "figures/loss.png" not in page  # no relative reference left: it opens from anywhere
    assert '<td style="text-align: right;">2</td>' in page and "<em>text</em>" in page


def test_markup_in_the_text_is_shown_as_text():
    page = to_html('<script>alert(1)</script> <img src=x onerror="alert(2)">', "t")
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_sanitiser_keeps_allowed_markup_and_drops_active_content():
    fragment = (
        '<p><a href="https://example.org" onclick="x()">ok</a> <a href="java\tscript:x()">no</a>'
        '<img src="http://example.org/a.png" alt="remote"><iframe src="a"></iframe></p>'
    )
    out = sanitize(fragment)
    assert '<a href="https://example.org">ok</a>' in out  # the handler dropped, the link kept
    assert "<a>no</a>" in out  # a javascript: URL, however spelled, is not kept
    assert '<img alt="remote">' in out  # only inlined PNG data is an image source
    assert "&lt;iframe" in out and "<iframe" not in out


def test_figure_links_are_images_alone_on_their_line_in_order_once():
    text = "![a](f/a.png)\n\nsee ![b](f/b.png) inline\n![c](f/c.png)\n![a](f/a.png)\n"
    assert figure_links(text) == ["f/a.png", "f/c.png"]
