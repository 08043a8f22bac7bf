"""The hand-written docs cannot drift from the code they describe."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ansible_collections.protectnet.epns.plugins.module_utils import _epns

REPO = Path(__file__).resolve().parents[2]


def test_troubleshooting_table_is_generated_from_epns():
    done = subprocess.run([sys.executable, str(REPO / "docs" / "build_docs.py"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_troubleshooting_lists_every_failure_class():
    text = (REPO / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
    for name, failure in _epns.FAILURE_CLASSES.items():
        assert f"| `{name}` |" in text, name
        assert failure.hint in text, name


def test_every_page_in_docs_is_built():
    """make docs renders the pages build_docs.py lists; a page left off the list never reaches the site."""
    source = (REPO / "docs" / "build_docs.py").read_text()
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    missing = [name for name in pages if f'"{name}"' not in source]
    assert missing == []
