"""The Markdown report reads in a terminal in the HTML report's order: causes, networks, ESET's view, hosts."""
from __future__ import annotations

import re

from _report_view_fixtures import render, synthetic


def test_markdown_order_and_terminal_reading():
    model, inputs, _made = synthetic(1000)
    text = render("markdown", model, inputs)
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings[:5] == ["Causes", "Networks", "ESET's view beside the probe's",
                            "Devices Ansible cannot probe (inferred, not a verdict)", "Hosts"]
    assert re.search("[\x00-\x08\x0b-\x1f\x7f]", text) is None and "<script" not in text
    biggest = model["causes"][0]
    line = next(x for x in text.splitlines() if x.startswith("- " + biggest["title"].replace("_", "\\_") + ":"))
    assert line.count(",") == 19 and f"and {biggest['hosts'] - 20} more" in line  # 20 names, then a count
    hosts = text.split("\n## Hosts\n", 1)[1]
    assert hosts.splitlines()[1].count("|") == 3 + 4 + 1  # host, verdict, reason + 4 compact paths
    assert all("inferred" in x for x in text.splitlines() if x.startswith("- ") and "(windows)" in x)
