"""Shared pytest set-up: the collection must be importable as ansible_collections.protectnet.epns."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLLECTIONS = REPO / ".build" / "collections"
_LINK = COLLECTIONS / "ansible_collections" / "protectnet" / "epns"

# `make` creates the link; this keeps a bare `pytest` run working too.
if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    _LINK.symlink_to(Path("../../../.."))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS))


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "browser: opens the HTML report in headless Debian chromium (no lab needed)")
