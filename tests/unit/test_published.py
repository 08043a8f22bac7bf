"""ESET's published EPNS addresses (issue 16): the dated, sourced data file, a user's file instead, the addresses
outside the list, and epns_firewall taking the list by name in extra_destinations."""
from __future__ import annotations

import ipaddress
import typing as t
from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import connection_loader
from ansible.template import Templar
from ansible_collections.protectnet.epns.plugins.action import epns_firewall as action
from ansible_collections.protectnet.epns.plugins.plugin_utils._published import (
    DEFAULT_PATH,
    PublishedError,
    load_published,
    outside,
)

# The KB332 EPNS rows as /work/shared/reference/ESET-FACTS.md section 1 quotes the transcription (first, last).
KB332_RANGES = [("91.228.165.144", "91.228.165.148"), ("91.228.165.159", "91.228.165.160"),
                ("91.228.167.171", "91.228.167.172"), ("91.228.167.187", "91.228.167.188"),
                ("91.228.167.192", "91.228.167.194"), ("38.90.226.51", "38.90.226.52"),
                ("38.90.226.62", "38.90.226.66")]


def _addresses(networks: t.Iterable[t.Any]) -> t.Set[str]:
    return {str(a) for n in networks for a in ipaddress.ip_network(n)}


def _user_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mine.yml"
    path.write_text(text)
    return str(path)


def test_the_data_file_holds_exactly_the_kb332_ranges_dated_and_sourced_as_unverified() -> None:
    published = load_published()
    expected = {str(ipaddress.ip_address(first) + i) for first, last in KB332_RANGES
                for i in range(int(ipaddress.ip_address(last)) - int(ipaddress.ip_address(first)) + 1)}
    assert _addresses(published.networks) == expected
    assert published.date == "2026-07-24"
    assert "KB332" in published.source and "unverified" in published.source
    assert published.path == DEFAULT_PATH


def test_a_user_file_replaces_the_data_file(tmp_path: Path) -> None:
    path = _user_file(tmp_path, "date: 2026-12-01\nsource: read from KB332 by me\nnetworks: [198.51.100.0/24, "
                                "'2001:db8::/32']\n")
    published = load_published(path)
    assert [n.with_prefixlen for n in published.networks] == ["198.51.100.0/24", "2001:db8::/32"]
    assert (published.date, published.source, published.path) == ("2026-12-01", "read from KB332 by me", path)


@pytest.mark.parametrize("text, named", [
    ("date: 2026-12-01\nsource: s\nnetworks: [198.51.100.1/24]\n", "network '198.51.100.1/24' is not a CIDR"),
    ("date: 2026-12-01\nsource: s\nnetworks: [epns.eset.com]\n", "network 'epns.eset.com' is not a CIDR"),
    ("date: 2026-12-01\nsource: s\nnetworks: []\n", "networks is []; expected a non-empty list"),
    ("date: yesterday\nsource: s\nnetworks: [198.51.100.0/24]\n", "date is 'yesterday'; expected"),
    ("date: 2026-12-01\nnetworks: [198.51.100.0/24]\n", "source is None; expected"),
    ("- 198.51.100.0/24\n", "holds list; expected a YAML mapping"),
    ("date: [\n", "is not valid YAML"),
])
def test_a_bad_user_file_is_refused_naming_the_value_and_the_layout(tmp_path: Path, text: str, named: str) -> None:
    path = _user_file(tmp_path, text)
    with pytest.raises(PublishedError) as caught:
        load_published(path)
    assert named in str(caught.value) and path in str(caught.value)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(PublishedError, match=r"'/nonexistent/epns.yml' cannot be read \(No such file"):
        load_published("/nonexistent/epns.yml")


def test_outside_lists_each_address_no_published_network_holds_once_in_order() -> None:
    published = load_published()
    answers = ["91.228.165.146", "91.228.165.149", "2001:db8::1", "not-an-address", "91.228.165.149",
               " 38.90.226.66 ", "38.90.226.67"]
    assert outside(published, answers) == ["91.228.165.149", "2001:db8::1", "38.90.226.67"]
    assert outside(published, []) == []


# -- epns_firewall: extra_destinations by name -------------------------------------------------------------------
def _run_action(args: t.Dict[str, t.Any], basedir: Path, check_mode: bool = False,
                ) -> t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any]]:
    """The real action plugin with the module call replaced: what the module would get, and the task's result."""
    loader = DataLoader()
    loader.set_basedir(str(basedir))
    task = Task()
    task.action = action.MODULE
    task.args = dict(args)
    task.check_mode = check_mode
    context = PlayContext()
    plugin = action.ActionModule(task, connection_loader.get("local", context, "/dev/null"), context, loader,
                                 Templar(loader=loader), None)
    sent: t.Dict[str, t.Any] = {}

    def module(module_name: str, module_args: t.Dict[str, t.Any], task_vars: t.Any) -> t.Dict[str, t.Any]:
        sent.update(module_args, _name=module_name)
        return {"changed": True, "rollback": None}

    plugin._execute_module = module  # type: ignore[method-assign,assignment]
    return sent, plugin.run(task_vars={})


def test_the_name_expands_to_the_published_networks_before_the_module_runs(tmp_path: Path) -> None:
    sent, result = _run_action({"extra_destinations": ["eset_published", "203.0.113.0/24"], "ports": [8883]},
                               tmp_path, check_mode=True)
    assert sent["_name"] == action.MODULE and sent["ports"] == [8883]
    assert _addresses(sent["extra_destinations"]) == _addresses(load_published().networks) | _addresses(
        ["203.0.113.0/24"])
    assert "eset_published" not in sent["extra_destinations"]
    assert result["published"] == [{"path": DEFAULT_PATH, "date": "2026-07-24", "source": load_published().source,
                                    "networks": [n.with_prefixlen for n in load_published().networks]}]


def test_a_relative_user_file_is_found_from_the_playbook(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "epns.yml").write_text("date: 2026-12-01\nsource: mine\nnetworks: [198.51.100.0/25, "
                                                 "198.51.100.128/25]\n")
    sent, result = _run_action({"extra_destinations": "eset_published:files/epns.yml"}, tmp_path)
    assert sent["extra_destinations"] == ["198.51.100.0/24"]  # merged as any entries are
    assert result["published"][0]["path"] == str(tmp_path / "files" / "epns.yml")
    assert result["extra_destinations_merged"] == ["198.51.100.0/24"]


def test_without_the_name_nothing_changes(tmp_path: Path) -> None:
    sent, result = _run_action({"extra_destinations": ["203.0.113.7"]}, tmp_path)
    assert sent["extra_destinations"] == ["203.0.113.7/32"] and "published" not in result


@pytest.mark.parametrize("entry, message", [
    ("eset_published:missing.yml", "extra_destinations: 'eset_published:missing.yml': published addresses file "
                                   "'{base}/missing.yml' cannot be read (No such file or directory); expected a YAML "
                                   "mapping with date (YYYY-MM-DD), source (text) and networks (a list of CIDRs)"),
    ("eset_published:", "extra_destinations: 'eset_published:' names no file after 'eset_published:'; accepted: "
                        "eset_published or eset_published:/path/to/file.yml"),
    ("eset_publishd", "extra_destinations: 'eset_publishd' is not an IPv4/IPv6 address or CIDR"),
])
def test_a_bad_name_or_file_fails_before_the_host_is_contacted(tmp_path: Path, entry: str, message: str) -> None:
    sent, result = _run_action({"extra_destinations": [entry]}, tmp_path)
    assert sent == {} and result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(message.format(base=tmp_path))
    if entry == "eset_publishd":
        assert result["msg"].endswith("an entry may be eset_published or eset_published:/path/to/file.yml: ESET's "
                                      "published EPNS addresses)")
