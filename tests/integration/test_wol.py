"""Wake-on-LAN in the lab: wol_multicast on the server host (validation, check mode, idempotence, routes, the shared
nftables backend, the ESET PROTECT API emulator with and without a write call) and the epns_wol role end to end
(listeners on both agent subnets, a multicast group on the server's segment, a directed broadcast across pn-router2
with forwarding off and on, the server's own egress firewall dropping UDP 9)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from _firewall import clean_host, sh
from _wol import GROUP, GROUP6, LAN2_BCAST, LAN_BCAST, cells, multicast, needs_lan2, role, routes

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from emulator import DEFAULT_USERS, Emulator  # noqa: E402
from emulator.pki import make_pki  # noqa: E402

pytestmark = pytest.mark.lab

WRITE_PATH = "/v2/configuration:batchSetValues"  # what the emulator serves when told to; ESET has no such call
SETTING = "server.wakeOnLan.multicastAddresses"
HOOK = "/etc/network/if-up.d/protectnet-epns-wol-routes"
CONTROLLER = "198.18.0.1"  # the root namespace's lab address: the server host reaches the emulator there
SERVER_DENY_UDP = """table inet pnt_hostfw {
  chain output {
    type filter hook output priority 0; policy drop;
    ct state established,related accept
    oifname "lo" accept
    meta l4proto { tcp, icmp, ipv6-icmp } accept
  }
}
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_pki(tmp_path_factory.mktemp("wol-emu"), [CONTROLLER])


@pytest.fixture(scope="module")
def wlab(lab: Any) -> Iterator[Any]:
    needs_lan2(lab)
    clean_host(lab, lab.server)
    sh(lab, lab.server, ["mkdir", "-p", "/etc/network/if-up.d"])  # ifupdown's hook directory (host overlay /etc)
    yield lab
    clean_host(lab, lab.server)
    lab.run(lab.server, ["ip", "route", "flush", "proto", "186"])
    lab.run(lab.server, ["ip", "-6", "route", "flush", "proto", "186"])
    lab.directed_broadcast(False)


def emulator(pki: Any, **options: Any) -> Emulator:
    return Emulator("onprem", host=CONTROLLER, certfile=str(pki.cert), keyfile=str(pki.key), **options)


def api(emu: Emulator, pki: Any) -> Dict[str, Any]:
    return {"api_urls": {"default": emu.url}, "ca_path": str(pki.ca), "username": "api-user",
            "password": DEFAULT_USERS["api-user"]}


def ruleset(lab: Any) -> str:
    return sh(lab, lab.server, ["nft", "list", "ruleset"])


# -- wol_multicast -------------------------------------------------------------------------------------------------
def test_validation_refuses_what_does_not_cross_a_router(wlab: Any, tmp_path: Path) -> None:
    bad = multicast(wlab, tmp_path, {"destinations": ["10.0.0.5", "255.255.255.255", "127.0.0.1", "0.0.0.0",
                                                      "10.1.2.7/24", "::1"],
                                     "server_settings": False, "host_network": False})
    assert bad["failed"], bad
    msg = bad["msg"]
    assert "10.0.0.5 is a unicast address" in msg and "does not answer ARP" in msg
    assert "255.255.255.255 is the limited broadcast: routers never forward it" in msg
    assert "127.0.0.1 is a loopback address" in msg and "::1 is a loopback address" in msg
    assert "0.0.0.0 is the unspecified address" in msg
    assert "'10.1.2.7/24' is not the directed broadcast of 10.1.2.0/24 (that is 10.1.2.255/24)" in msg
    allowed = multicast(wlab, tmp_path, {"destinations": ["10.0.0.5"], "allow": ["unicast"],
                                         "server_settings": False, "host_network": False})
    assert not allowed.get("failed") and allowed["values"] == ["10.0.0.5"]


def test_normalises_dedups_warns_link_local_and_computes_subnet_broadcasts(wlab: Any, tmp_path: Path) -> None:
    done = multicast(wlab, tmp_path, {"destinations": [GROUP, "FF05::0009", GROUP, "224.0.0.251", "ff02::1",
                                                       "10.1.2.255/24"],
                                      "subnets": ["10.1.2.0/24", "10.1.3.7/23"],
                                      "server_settings": False, "host_network": False})
    assert not done.get("failed"), done
    assert done["values"] == [GROUP, GROUP6, "224.0.0.251", "ff02::1", "10.1.2.255", "10.1.3.255"]
    assert done["duplicates_removed"] == [GROUP, "10.1.2.255"]
    warnings = " ".join(done.get("warnings", []))
    assert "224.0.0.251 is a link-local multicast group" in warnings and "ff02::1 is a link-local" in warnings
    by = {d["address"]: d for d in done["destinations"]}
    assert by["10.1.3.255"]["subnet"] == "10.1.2.0/23" and by["10.1.3.255"]["source"] == "subnets"
    assert by[GROUP6]["kind"] == "ipv6_multicast" and by[GROUP6]["scope"] == "site"
    assert done["changed"] is False


def test_host_network_check_mode_apply_idempotent_and_absent(wlab: Any, tmp_path: Path) -> None:
    args = {"destinations": [GROUP, GROUP6, "198.18.2.255/24"], "server_settings": False,
            "firewall_backend": "nftables"}
    before_rules, before_routes = ruleset(wlab), routes(wlab)
    check = multicast(wlab, tmp_path, args, "--check", "--diff")
    assert check["changed"] is True and not check.get("failed"), check
    assert (ruleset(wlab), routes(wlab)) == (before_rules, before_routes)
    assert "+route 239.255.0.9/32 dev eth0 proto 186" in check["_stdout"]
    applied = multicast(wlab, tmp_path, args, "--diff")
    assert applied["changed"] is True
    assert applied["host_network"]["firewall"]["changes"] == check["host_network"]["firewall"]["changes"]
    rules = ruleset(wlab)
    assert "table inet protectnet_wol" in rules and "udp dport 9 ip ttl set 16 accept" in rules
    assert "ip6 hoplimit set 16" in rules and "198.18.2.255" in rules
    assert "239.255.0.9 dev eth0" in routes(wlab) and "ff05::9 dev eth0" in routes(wlab)
    # the boot hook brings the routes back when ifupdown brings eth0 up
    assert applied["host_network"]["routes"]["files"] == [{"path": HOOK, "action": "created"}]
    sh(wlab, wlab.server, ["ip", "route", "flush", "proto", "186"])
    sh(wlab, wlab.server, ["ip", "-6", "route", "flush", "proto", "186"])
    assert routes(wlab).strip() == ""
    sh(wlab, wlab.server, ["env", "IFACE=eth0", "MODE=start", "PHASE=post-up", HOOK])
    assert "239.255.0.9 dev eth0" in routes(wlab) and "ff05::9 dev eth0" in routes(wlab)
    again = multicast(wlab, tmp_path, args)
    assert again["changed"] is False, again["host_network"]
    again_check = multicast(wlab, tmp_path, args, "--check")
    assert again_check["changed"] is False
    gone = multicast(wlab, tmp_path, dict(args, state="absent"))
    assert gone["changed"] is True
    assert "protectnet_wol" not in ruleset(wlab) and routes(wlab).strip() == ""
    assert wlab.run(wlab.server, ["test", "-e", HOOK]).returncode == 1


def test_action_required_without_a_write_call(wlab: Any, tmp_path: Path, pki: Any) -> None:
    with emulator(pki) as emu:
        args = {"destinations": [GROUP, GROUP6], "host_network": False, **api(emu, pki)}
        done = multicast(wlab, tmp_path, args)
        assert not done.get("failed"), done.get("msg")
        assert done["changed"] is False and done["applied"] is False
        required = done["action_required"]
        assert required["values"] == [GROUP, GROUP6] and "More > Settings" in required["where"]
        assert "no public ESET PROTECT API call writes server settings" in required["reason"]
        calls = [r["path"] for r in emu.requests]
        assert "/v2/configuration:batchGetValues" in calls and WRITE_PATH not in calls
        strict = multicast(wlab, tmp_path, dict(args, require_applied=True))
        assert strict["failed"] and "Enter these Wake-on-LAN multicast addresses" in strict["msg"]


def test_applied_where_the_settings_map_names_a_write_call(wlab: Any, tmp_path: Path, pki: Any) -> None:
    with emulator(pki, config_write_path=WRITE_PATH) as emu:
        args = {"destinations": [GROUP, "198.18.2.255/24"], "host_network": False,
                "settings_map": {"write_path": WRITE_PATH}, **api(emu, pki)}
        check = multicast(wlab, tmp_path, args, "--check")
        assert check["changed"] is True and WRITE_PATH not in [r["path"] for r in emu.requests]
        done = multicast(wlab, tmp_path, args)
        assert not done.get("failed"), done.get("msg")
        assert done["changed"] is True and done["applied"] is True and done["action_required"] is None
        assert emu.state.data["configuration"]["server"]["wakeOnLan"]["multicastAddresses"] == [GROUP, LAN2_BCAST]
        again = multicast(wlab, tmp_path, args)
        assert again["changed"] is False and again["server"]["in_sync"] is True


# -- the role: listeners, sender, verdict ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def flow(wlab: Any, pki: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("wol-role")
    rec: Dict[str, Any] = {}
    with emulator(pki) as emu:
        common = {"epns_wol_api": api(emu, pki), "epns_wol_firewall_backend": "nftables"}
        wlab.directed_broadcast(False)
        rec["off"] = role(wlab, tmp, **common)
        # forwarding of directed broadcasts on, and the server's own egress firewall drops UDP: first without
        # opening it, then with wol_multicast's hook (that last run is also the "forwarding on" case)
        wlab.directed_broadcast(True)
        clean_host(wlab, wlab.server)
        sh(wlab, wlab.server, ["nft", "-f", "-"], input=SERVER_DENY_UDP)
        rec["blocked"] = role(wlab, tmp, epns_wol_firewall=False, **common)
        rec["opened"] = rec["on"] = role(wlab, tmp, **common)
        rec["ruleset_opened"] = ruleset(wlab)
    clean_host(wlab, wlab.server)
    wlab.directed_broadcast(False)
    yield rec


def test_multicast_group_reaches_the_agents_on_the_servers_segment(flow: Dict[str, Any], wlab: Any) -> None:
    for group, source in ((GROUP, "198.18.0.5"), (GROUP6, "2001:db8::5")):
        for agent in wlab.agents:
            cell = cells(flow["off"])[group][agent]
            assert cell["status"] == "arrived", cell
            assert cell["source"] == source and cell["at"]
            assert cell["ttl"] == 16, cell  # sent with TTL 1, rewritten by the protectnet_wol rule
        # not routed across pn-router2: said so, not hidden
        assert cells(flow["off"])[group][wlab.lan2_agents[0]]["status"] == "not_delivered"


def test_directed_broadcast_needs_forwarding_on_the_router(flow: Dict[str, Any], wlab: Any) -> None:
    lan2 = wlab.lan2_agents[0]
    off = cells(flow["off"])[LAN2_BCAST]
    assert off[lan2]["status"] == "not_forwarded", off[lan2]
    assert "does not forward directed broadcasts" in off[lan2]["reason"]
    assert all(off[a]["status"] == "not_applicable" for a in wlab.agents)
    on = cells(flow["on"])[LAN2_BCAST][lan2]
    assert on["status"] == "arrived" and on["source"] == "198.18.0.5", on
    # rewritten to 16 on the server; then one or two routers (pn-router, until its ICMP redirect to pn-router2 is taken)
    assert on["ttl"] in (14, 15), on
    # the server segment's own broadcast arrives on its agents either way
    assert all(cells(flow["off"])[LAN_BCAST][a]["status"] == "arrived" for a in wlab.agents)
    table = flow["on"]["result"]["section"]["table"]
    assert table["columns"] == ["destination", *sorted([*wlab.agents, lan2])]


def test_the_servers_egress_firewall_is_named_then_opened(flow: Dict[str, Any], wlab: Any) -> None:
    for address, row in cells(flow["blocked"]).items():
        for agent, cell in row.items():
            if cell["status"] == "not_applicable":
                continue
            assert cell["status"] == "not_sent", (address, agent, cell)
            assert cell["failure_class"] == "server_firewall" and "EPERM" in cell["detail"]
    opened = cells(flow["opened"])
    assert opened[GROUP][wlab.agents[0]]["status"] == "arrived"
    assert opened[LAN2_BCAST][wlab.lan2_agents[0]]["status"] == "arrived"
    # the hook went into the host's own default-deny chain, tagged, beside our table
    hostfw = flow["ruleset_opened"].split("table inet protectnet_wol")[0]
    assert "set protectnet_wol_wol_v4" in hostfw and "ip daddr @protectnet_wol_wol_v4 udp dport 9 accept" in hostfw
    assert "table inet protectnet_wol" in flow["ruleset_opened"]


def test_role_reports_the_nics_and_action_required(flow: Dict[str, Any], wlab: Any) -> None:
    nic = flow["off"]["nic"][wlab.agents[0]]
    assert nic["supported"] is False and "does not support Wake-on-LAN" in nic["reason"] and not nic.get("failed")
    config = flow["off"]["config"]
    assert config["action_required"]["values"] == config["values"]
    assert set(config["values"]) == {GROUP, GROUP6, LAN_BCAST, LAN2_BCAST}
    heard: List[Dict[str, Any]] = list(flow["on"]["heard"].values())
    assert all(h.get("finished") and h.get("listening") for h in heard), heard
