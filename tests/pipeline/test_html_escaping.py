"""Every HTML page we write, rendered with hostile names and values and opened in headless
Chromium (issue 23): the report, the experiments table and the Great Expectations Data Docs.
No script of theirs runs (each payload would mark the page) and no javascript: URL exists,
while the hostile text is still shown, as text."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from helpers import open_page, require_chromium, tiny_prepared
from PIL import Image

from simclr.config import Params, from_dict
from simclr.data.prepared import save_prepared
from simclr.io import write_json

require_chromium()

# Each payload, if it ran, would set the page's title and mark its <html> element.
RUN = "document.title='PWNED';document.documentElement.dataset.pwned=1"
PAYLOADS = [
    f'<img src=x onerror="{RUN}">',
    f"<script>{RUN}</script>",
    f'<svg onload="{RUN}">',
    f"[click](javascript:{RUN})",
    f"![img](javascript:{RUN})",
    f"<a href='javascript:{RUN}'>a</a>",
    f"x\n\n[ref]: javascript:{RUN}\n[ref]",
    f'`` ` `` <iframe src="javascript:{RUN}"></iframe>',
]


class _Urls(HTMLParser):
    """Every attribute of the parsed page, and the URLs among them."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.attributes += [(tag, k, v or "") for k, v in attrs]


def title_of(page: str) -> str:
    return re.search(r"<title>(.*?)</title>", page, re.S).group(1).strip()


def assert_inert(dom: str, title: str) -> None:
    """No payload ran in the page Chromium loaded, and none left a javascript: URL or an
    event handler of its own."""
    assert title_of(dom) == title
    parser = _Urls()
    parser.feed(dom)
    for tag, name, value in parser.attributes:
        assert not (tag == "html" and name == "data-pwned"), "a payload ran"
        squeezed = "".join(c for c in value if c > " ").lower()
        assert not squeezed.startswith("javascript:"), (tag, name, value)
        assert not (name.startswith("on") and "PWNED" in value), (tag, name, value)


@pytest.fixture
def hostile_report(tmp_path, monkeypatch, prefect_api) -> Path:
    """The real report task on the fixture's stage outputs, with an image-folder dataset whose
    params (root, test_root) and the distributed master address hold the payloads."""
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from report_fixture import PARAMS, build_reports

    from flows.report import report_flow

    monkeypatch.chdir(tmp_path)
    build_reports(tmp_path)
    save_prepared(tiny_prepared(12, 6, 2), tmp_path / "data/prepared/pets")
    write_json(
        tmp_path / "reports/validation/results/pets.json",
        {"dataset": "pets", "success": True, "expectations": [{"check": "x", "success": True}]},
    )
    raw = {**PARAMS, "datasets": {**PARAMS["datasets"]}}
    raw["datasets"]["pets"] = {
        "source": "imagefolder",
        "root": " ".join(PAYLOADS[:4]),
        "test_root": " ".join(PAYLOADS[4:]),
    }
    raw["pretrain"] = {**raw["pretrain"], "distributed": {"master_addr": PAYLOADS[0]}}
    params = from_dict(Params, raw)
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        report_flow(params=params)
    return tmp_path / "reports" / "report.html"


def test_the_report_shows_hostile_params_as_text_and_runs_none_of_them(hostile_report):
    page = hostile_report.read_text()
    assert "<script" not in page  # the report has no script of its own; the check is the test's
    dom, _ = open_page(hostile_report, check_images=True)
    assert_inert(dom, "SimCLR pipeline report")
    assert re.search(r'data-images="(\d+)/\1"', dom)  # it loaded, every figure decoded
    assert "[click](javascript:document.title=" in dom  # the value, shown as it is
    assert "&lt;img src=x onerror=" in dom


def test_the_experiments_table_page_runs_no_hostile_name(tmp_path):
    from flows.compare import TITLE
    from tasks.comparison import listing_markdown, write_result
    from tasks.experiments import Group

    groups = [
        Group([PAYLOADS[0]], [PAYLOADS[3]], "", {"pretrain.lr": 0.5}, {"m": {"0": 0.5}}),
        Group([PAYLOADS[5]], [PAYLOADS[6]], "", {"pretrain.lr": PAYLOADS[4]}, {"m": {"0": 0.6}}),
    ]
    page = write_result(tmp_path / "experiments.html", listing_markdown(groups), "", TITLE)
    dom, _ = open_page(page)
    assert_inert(dom, TITLE)
    assert "onerror=" in dom  # shown as text


def hostile_folder(root: Path) -> None:
    """Good images in two classes, one of them named with markup, and undecodable files whose
    names carry markup: Pillow's message about each names the file."""
    rng = np.random.default_rng(0)
    classes = ["cat", f'<svg onload="{RUN}">']
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")
    (root / "cat" / f'x<img src=x onerror="{RUN}">.jpg').write_bytes(b"not an image")
    (root / classes[1] / "bad.png").write_bytes(b"\x89PNG broken")


def test_the_data_docs_of_hostile_file_and_class_names_run_none_of_them(tmp_path):
    from simclr.config import load_params
    from simclr.data.prepared import load_manifest, split_source
    from tasks.sources import load_dataset
    from tasks.validate import Suites, validate_manifest

    hostile_folder(tmp_path / "img")
    (tmp_path / "params.yaml").write_text(
        f"datasets: {{pets: {{source: imagefolder, root: '{tmp_path / 'img'}'}}}}\n"
        "data: {image_size: 8}\nvalidate: {min_rows: 4, min_per_class: 1}\n"
        "pretrain: {dataset: pets}\ntransfer: {datasets: []}\n"
    )
    p = load_params(tmp_path / "params.yaml")
    cfg = p.datasets["pets"]
    source = load_dataset(cfg, cfg.options(p.data), 0)
    root = save_prepared(split_source(source, 0.25, 0), tmp_path / "prepared")
    suites = Suites.create()
    try:
        report = validate_manifest("pets", p, load_manifest(root), list(source.class_names), suites)
        suites.publish(tmp_path / "docs")
    finally:
        suites.discard()
    assert not report["success"]  # the two undecodable files
    pages = sorted((tmp_path / "docs").rglob("*.html"))
    results = [p for p in pages if "validations" in p.parts]
    # the index, and a page for each of the two suites and each of their two results
    assert len(results) == 2 and len(pages) == 5, pages
    (manifest_page,) = [p for p in results if "class-counts" not in p.name]
    assert "cannot identify image file" in manifest_page.read_text()  # the failing rows shown
    for page in pages:
        dom, _ = open_page(page)
        assert_inert(dom, title_of(page.read_text()))  # a script would have changed it
    assert "x&lt;img src=x onerror=" in open_page(manifest_page)[0]  # as text
