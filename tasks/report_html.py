"""The self-contained HTML page of a Markdown text: its figures inlined as data URIs, the style
inline, no external reference of any kind (it opens offline, from anywhere)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping

from simclr.errors import PipelineError

IMAGE_CHECK = """<script>
// Marks the page once loaded: how many images decoded (used by the headless-browser test).
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt);
  document.body.dataset.images = `${imgs.length - bad.length}/${imgs.length}`;
  document.body.dataset.broken = bad.join("|");
});
</script>"""

STYLE = """<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f6f6f6; padding: 0 0.2em; }
</style>"""

FIGURE_LINK = re.compile(r"!\[[^\]]*\]\(([^):]+\.png)\)")


def figure_links(markdown_text: str) -> list[str]:
    """The relative paths of the PNG figures `markdown_text` shows, in order."""
    return list(dict.fromkeys(FIGURE_LINK.findall(markdown_text)))


def data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode()}"


def inline_figures(markdown_text: str, figures: Mapping[str, bytes]) -> str:
    """`markdown_text` with each figure link replaced by the figure itself, as a data URI: for
    a reader without the figure files, such as the Prefect UI, whose Markdown renderer allows
    data:image/ sources and resolves no relative path."""

    def inline(match: re.Match) -> str:
        head = match.group(0)[: match.start(1) - match.start(0)]  # "![alt]("
        return f"{head}{data_uri(figures[match.group(1)])})"

    return FIGURE_LINK.sub(inline, markdown_text)


def to_html(markdown_text: str, title: str, figures: Mapping[str, bytes] | None = None) -> str:
    """The page: `markdown_text` rendered, each figure it links replaced by its bytes from
    `figures` (relative path -> PNG), as a data URI."""
    import markdown

    figures = figures or {}
    # Escaped first: text from params or experiment names must not become markup in the page.
    body = markdown.markdown(html.escape(markdown_text, quote=False), extensions=["tables"])

    def inline(match: re.Match) -> str:
        link = match.group(1)
        if link not in figures:
            raise PipelineError(f"{link}: figure missing; re-run the stage that writes it")
        return f'src="{data_uri(figures[link])}"'

    body = re.sub(r'src="([^":]+\.png)"', inline, body)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f"{STYLE}</head><body>\n{body}\n{IMAGE_CHECK}</body></html>\n"
    )
