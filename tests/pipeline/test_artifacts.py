"""What the Prefect UI shows, read back from a real server: the pretrain stage's progress
artifact, moved on every epoch, and the report artifact with its figures inside it."""

from __future__ import annotations

import base64
import re

import pytest
from helpers import api, init_repo, repo_env, runner, tiny_prepared

import tasks.artifacts
from flows.pretrain import pretrain_flow
from simclr.config import Params, from_dict
from simclr.data.prepared import save_prepared
from tasks.paths import REPORT_MD, prepared_root
from tasks.report_html import figure_links

PARAMS = {
    "datasets": {"digits": {"source": "digits"}},
    "model": {"widths": [8, 16], "blocks": [1, 1], "proj_hidden_dim": 16, "proj_dim": 8},
    "pretrain": {"epochs": 3, "batch_size": 16, "warmup_epochs": 1, "device": "cpu",
                 "knn_every": 0, "threads": 1},
    "transfer": {"datasets": []},
}  # fmt: skip


def latest(prefect_api: str, key: str) -> dict:
    body = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC", "limit": 1}
    [artifact] = api(prefect_api, "/artifacts/filter", body)
    return artifact


@pytest.fixture
def on_server(prefect_api, monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    with temporary_settings({PREFECT_API_URL: prefect_api}):
        yield prefect_api


def test_pretraining_moves_its_progress_artifact_every_epoch(on_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    init_repo(runner(tmp_path, repo_env()))  # DVCLive records into a Git repository
    save_prepared(tiny_prepared(48, 12), prepared_root("digits"))
    seen = []
    real_update = tasks.artifacts.update_progress_artifact

    def update(artifact_id, progress, description=None):  # observes, and calls the real one
        seen.append((round(progress, 1), description.split(":")[0]))
        return real_update(artifact_id, progress, description=description)

    monkeypatch.setattr(tasks.artifacts, "update_progress_artifact", update)
    pretrain_flow(params=from_dict(Params, PARAMS, ""))
    assert seen == [(33.3, "epoch 1/3"), (66.7, "epoch 2/3"), (100.0, "epoch 3/3")]
    progress = latest(on_server, "pretrain-progress")
    assert progress["type"] == "progress" and progress["data"] == 100.0
    assert re.fullmatch(r"epoch 3/3: loss \d+\.\d{4}", progress["description"])
    assert progress["flow_run_id"]  # the UI shows it on the pretrain run's page


def test_the_report_artifact_holds_its_figures_as_data_uris(report_fixture_dir, prefect_api):
    markdown = latest(prefect_api, "report")["data"]
    figures = figure_links((report_fixture_dir / REPORT_MD).read_text())
    assert len(figures) == 6 and not figure_links(markdown)  # no relative link left
    shown = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    expected = [(report_fixture_dir / REPORT_MD.parent / f).read_bytes() for f in figures]
    assert [base64.b64decode(s) for s in shown] == expected
