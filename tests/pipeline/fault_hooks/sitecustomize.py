"""Faults injected into a real stage process (tests/pipeline/test_faults.py puts this folder
first on PYTHONPATH, so Python imports this module at startup); inert unless its variables are set.

SIMCLR_FAULT_KILL=<path>: the process SIGKILLs itself when it renames a finished temporary onto
  <path> (relative to the working directory), that is at the last moment before the output
  would be complete: what a kill at that instant leaves is what any kill while writing leaves.
SIMCLR_FAULT_ENOSPC=<file name>: writing text to a file of that name (the temporary beside it
  included) writes half the text, then fails as a full disk does (OSError ENOSPC).
"""

import errno
import os
import pathlib
import signal

_kill = os.environ.get("SIMCLR_FAULT_KILL")
_enospc = os.environ.get("SIMCLR_FAULT_ENOSPC")

if _kill:
    _target = os.path.abspath(_kill)
    _replace = os.replace

    def _replace_or_die(src, dst, *args, **kwargs):
        if os.path.abspath(dst) == _target:
            os.kill(os.getpid(), signal.SIGKILL)
        return _replace(src, dst, *args, **kwargs)

    os.replace = _replace_or_die

if _enospc:
    _write_text = pathlib.Path.write_text

    def _write_text_until_full(self, data, *args, **kwargs):
        if self.name == _enospc or self.name.startswith(f".{_enospc}."):
            _write_text(self, data[: len(data) // 2], *args, **kwargs)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return _write_text(self, data, *args, **kwargs)

    pathlib.Path.write_text = _write_text_until_full

# Only one sitecustomize is imported: this one also installs the suite's guard (tests/guard/,
# on PYTHONPATH after this folder).
import unexpected_guard  # noqa: E402, F401
