"""ARCHITECTURE.md lists every module of simclr/, tasks/ and flows/, and no module that is gone."""

import re

from helpers import ROOT

PACKAGES = ("simclr", "tasks", "flows")


def test_architecture_lists_every_module_and_only_those():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    listed = set(re.findall(r"`((?:simclr|tasks|flows)/[\w/]+\.py)`", text))
    modules = {
        p.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if not (p.name == "__init__.py" and p.parent.name in PACKAGES + ("data",))
    }
    assert not modules - listed, f"add to ARCHITECTURE.md: {sorted(modules - listed)}"
    assert not listed - modules, f"gone, remove from ARCHITECTURE.md: {sorted(listed - modules)}"
