"""report.html opened in headless Chromium (Debian's package, installed by .ci/run): it loads
with no console error, every image decodes, and a screenshot is kept as a test artifact."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import ROOT, open_page, require_chromium

from tasks.paths import REPORT_HTML

ARTIFACTS = ROOT / "test-artifacts"  # git-ignored; CI keeps what lands here
require_chromium()


def images_state(dom: str) -> tuple[str, str]:
    decoded = re.search(r'data-images="([^"]*)"', dom)
    broken = re.search(r'data-broken="([^"]*)"', dom)
    assert decoded, "the page's load handler did not run"
    return decoded.group(1), broken.group(1) if broken else ""


def test_report_loads_without_console_errors_and_every_image_decodes(
    report_fixture_dir: Path,
):
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    dom, errors = open_page(report_fixture_dir / REPORT_HTML, shot, check_images=True)
    assert errors == []
    decoded, broken = images_state(dom)
    assert decoded == "6/6" and broken == ""
    assert shot.stat().st_size > 10_000  # the screenshot artifact


def test_the_checks_catch_a_broken_image_and_a_script_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="fine" src="data:image/gif;base64,'
        'R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7">'
        '<img alt="broken" src="data:image/png;base64,bm90IGFuIGltYWdl">'
        "<script>undefinedFunction();</script></body></html>"
    )
    dom, errors = open_page(page, check_images=True)
    assert images_state(dom) == ("1/2", "broken")
    assert any("undefinedFunction" in e for e in errors), errors
