"""Data: embedded sources that ship inside installed packages, and the prepared format."""
