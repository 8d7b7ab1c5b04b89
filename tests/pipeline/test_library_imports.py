"""docs/library.md's snippet in a fresh interpreter: simclr/ used as a library pulls in neither
Prefect nor DVC (the snippet itself runs in tests/simclr/test_library.py)."""

import subprocess
import sys

from helpers import library_snippet as snippet


def test_the_library_and_the_snippet_import_neither_prefect_nor_dvc():
    check = (
        "import sys, simclr\n"
        f"exec(compile({snippet()!r}, 'library.md', 'exec'))\n"
        "found = sorted({m.partition('.')[0] for m in sys.modules} & {'prefect', 'dvc'})\n"
        "assert not found, found\n"
    )
    r = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
