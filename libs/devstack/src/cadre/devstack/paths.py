"""Where the stack keeps its data (one directory) and its downloaded jars (a cache)."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The workspace root: the nearest parent holding the Makefile and the uv workspace."""
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "Makefile").exists() and (candidate / "libs" / "events").is_dir():
            return candidate
    return here


def stack_dir() -> Path:
    return Path(os.environ.get("CADRE_STACK_DIR") or repo_root() / ".stack").resolve()


def cache_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cadre"
    return Path(os.environ.get("CADRE_CACHE_DIR") or default).resolve()
