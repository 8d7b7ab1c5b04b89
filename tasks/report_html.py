"""The self-contained HTML page of a Markdown text: its figures inlined as data URIs, the style
inline, no external reference of any kind (it opens offline, from anywhere)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping
from html.parser import HTMLParser

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

# A figure as report_markdown.figure writes it: an image alone on its line. Anchored, so that a
# value in the text (a param, a name) that looks like one is never read as a figure.
FIGURE_LINK = re.compile(r"^!\[[^\]\n]*\]\(([^):\n]+\.png)\)$", re.M)


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
    `figures` (relative path -> PNG), as a data URI.

    Nothing in the text becomes active content, whatever a user put in a value: Markdown is
    rendered with raw HTML off (a `<tag>` shows as text), then the HTML is rebuilt from an
    allowlist (`sanitize`): known tags and attributes only, links to http(s), mailto or
    relative targets, images from inlined PNG data only."""
    import markdown

    figures = figures or {}
    md = markdown.Markdown(extensions=["tables"])
    md.preprocessors.deregister("html_block")
    md.inlinePatterns.deregister("html")
    body = md.convert(markdown_text)

    def inline(match: re.Match) -> str:
        data = base64.b64encode(figures[match.group(1)]).decode()
        return f'src="data:image/png;base64,{data}"'

    links = "|".join(re.escape(link) for link in figures)
    if links:
        body = re.sub(f'src="({links})"', inline, body)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        f"{STYLE}</head><body>\n{sanitize(body)}\n</body></html>\n"
    )


# What Markdown (with tables) writes, and the attributes each tag may keep.
TAGS = {
    **dict.fromkeys(["h1", "h2", "h3", "h4", "h5", "h6", "p", "ul", "ol", "li", "blockquote"]),
    **dict.fromkeys(["table", "thead", "tbody", "tr", "code", "pre", "em", "strong", "br", "hr"]),
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "th": {"style"},
    "td": {"style"},
}
VOID = {"img", "br", "hr"}
SAFE_SCHEMES = {"http", "https", "mailto"}
SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")
ALIGN = re.compile(r"text-align: (left|right|center);")


def _safe(attribute: str, value: str) -> bool:
    if attribute == "style":
        return ALIGN.fullmatch(value) is not None
    if attribute == "src":
        return value.startswith("data:image/png;base64,")
    if attribute == "href":
        # Browsers ignore spaces and control characters in a URL's scheme ("java\tscript:").
        scheme = SCHEME.match("".join(c for c in value if c > " "))
        return scheme is None or scheme.group(1).lower() in SAFE_SCHEMES
    return True


class _Sanitizer(HTMLParser):
    """Rebuilds HTML from its parse: allowed tags with their allowed, safe attributes; any other
    tag written out as text; comments and declarations dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in TAGS:
            self.out.append(html.escape(self.get_starttag_text() or ""))
            return
        kept = [
            f' {k}="{html.escape(v)}"'
            for k, v in attrs
            if k in (TAGS[tag] or ()) and v is not None and _safe(k, v)
        ]
        self.out.append(f"<{tag}{''.join(kept)}>")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in TAGS and tag not in VOID:
            self.out.append(f"</{tag}>")
        elif tag not in TAGS:
            self.out.append(html.escape(f"</{tag}>"))

    def handle_data(self, data: str) -> None:
        self.out.append(html.escape(data, quote=False))


def sanitize(fragment: str) -> str:
    """`fragment` with only allowlisted tags, attributes and URLs left as markup."""
    parser = _Sanitizer()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.out)
