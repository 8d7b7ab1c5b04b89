"""Imported by Python at start-up in every process the tests start: the guard."""

import unexpected_guard  # noqa: F401
