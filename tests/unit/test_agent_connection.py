"""_agent (the agent's own connection, read passively from /proc) against real processes and real sockets: the lab's
ERAAgent stand-in (tests/lab/eraagent.py) under a name of each test's own, holding TCP connections to listeners of
this test; the socket-table text format on its own; bad input in words."""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._agent import AgentConfigError, observe, parse_proxy
from ansible_collections.protectnet.epns.plugins.module_utils._agent._tables import decode_address, parse_table

REPO = Path(__file__).resolve().parents[2]
STAND_IN = REPO / "tests" / "lab" / "eraagent.py"
UNUSED = "192.0.2.1"  # TEST-NET-1: an EPNS address nothing here connects to


@pytest.fixture
def listener() -> t.Iterator[t.Tuple[socket.socket, int]]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server, server.getsockname()[1]
    server.close()


@pytest.fixture
def stand_in() -> t.Iterator[t.Callable[..., t.Tuple[str, subprocess.Popen]]]:
    started: t.List[subprocess.Popen] = []

    def start(*args: str, name: t.Optional[str] = None) -> t.Tuple[str, subprocess.Popen]:
        name = name or "ERAt" + secrets.token_hex(4)
        child = subprocess.Popen([sys.executable, str(STAND_IN), "--name", name, "--tcp-only", *args],
                                 stdout=subprocess.PIPE, text=True)
        started.append(child)
        line = child.stdout.readline() if child.stdout else ""
        assert line.startswith("ready"), line
        return name, child

    yield start
    for child in started:
        child.kill()
        child.wait()


def test_the_table_text_gives_established_sockets_only_with_mapped_addresses_as_ipv4() -> None:
    tcp = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
           "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1\n"
           "   1: 0B0012C6:9C40 0A0112C6:22B3 01 00000000:00000000 00:00000000 00000000     0        0 222 1\n"
           "   2: 0B0012C6:9C41 0A0112C6:01BB 01 00000000:00000000 00:00000000 00000000     0        0 0 1\n"
           "   3: garbage\n")
    sockets = parse_table(tcp)
    assert [(s.inode, s.local, s.local_port, s.remote, s.remote_port) for s in sockets] == [
        (222, "198.18.0.11", 40000, "198.18.1.10", 8883)]
    # ::ffff:198.18.1.10 as tcp6 prints it on a little-endian host: four words, each in host byte order
    mapped = "0000000000000000FFFF00000A0112C6" if sys.byteorder == "little" else "00000000000000000000FFFFC612010A"
    assert decode_address(mapped) == "198.18.1.10"
    v6 = "B80D0120010000000000000010000000" if sys.byteorder == "little" else "20010DB8000000010000000000000010"
    assert decode_address(v6) == "2001:db8:0:1::10"


def test_a_direct_connection_to_epns_on_its_port_is_connected_and_up_at_most_the_process_age(
        listener: t.Tuple[socket.socket, int], stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    before = time.time()
    name, child = stand_in("--connect", f"127.0.0.1:{listener[1]}")
    time.sleep(1.2)
    seen = observe([name], ["127.0.0.1"], [], [listener[1]])
    assert seen.summary == {"state": "connected", "port": listener[1], "via": "direct",
                            "up_seconds": seen.connections[0]["up_seconds"]}
    assert seen.processes == [{"pid": child.pid, "name": name}] and seen.visible and seen.reason is None
    (held,) = seen.connections
    assert held["target"] == "epns" and held["remote"] == "127.0.0.1" and held["pid"] == child.pid
    assert before - 1.0 <= held["since"] <= time.time()  # the kernel prints the start in clock ticks
    assert 1 <= held["up_seconds"] <= time.time() - before + 1
    assert seen.message.startswith(f"the agent itself is on {listener[1]} direct to EPNS (127.0.0.1), up at most ")


def test_an_ipv4_mapped_peer_of_an_ipv6_socket_compares_as_the_ipv4_address(
        listener: t.Tuple[socket.socket, int], stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    name, _child = stand_in("--connect", f"[::ffff:127.0.0.1]:{listener[1]}")
    seen = observe([name], ["::ffff:127.0.0.1"], [], [listener[1]])
    assert [c["remote"] for c in seen.connections] == ["127.0.0.1"]
    assert seen.summary["state"] == "connected"


def test_a_connection_to_the_proxy_is_via_the_proxy_and_its_port_is_not_claimed(
        listener: t.Tuple[socket.socket, int], stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    name, _child = stand_in("--connect", f"127.0.0.1:{listener[1]}")
    seen = observe([name], [UNUSED], [f"http://localhost:{listener[1]}/"], [8883, 443])
    assert seen.summary["state"] == "connected" and seen.summary["via"] == "proxy" and seen.summary["port"] is None
    assert seen.connections[0]["target"] == "proxy" and seen.connections[0]["proxy"] == f"localhost:{listener[1]}"
    assert "via the proxy localhost:" in seen.message and "cannot be seen" in seen.message


def test_direct_to_epns_wins_over_the_proxy_and_the_first_port_over_the_second(
        stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    servers = [socket.create_server(("127.0.0.1", 0)) for _index in range(3)]
    primary, fallback, proxy = (s.getsockname()[1] for s in servers)
    name = "ERAt" + secrets.token_hex(4)
    for port in (proxy, fallback, primary):
        stand_in("--connect", f"127.0.0.1:{port}", name=name)
    seen = observe([name], ["127.0.0.1"], [f"127.0.0.1:{proxy}"], [primary, fallback])
    assert sorted(c["target"] for c in seen.connections) == ["epns", "epns", "proxy"]
    assert (seen.summary["port"], seen.summary["via"]) == (primary, "direct")
    seen = observe([name], ["127.0.0.1"], [f"127.0.0.1:{proxy}"], [fallback])
    assert (seen.summary["port"], seen.summary["via"]) == (fallback, "direct")
    for server in servers:
        server.close()


def test_elsewhere_or_nothing_is_not_connected_and_no_process_is_no_agent(
        listener: t.Tuple[socket.socket, int], stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    name, _child = stand_in("--connect", f"127.0.0.1:{listener[1]}")
    seen = observe([name], [UNUSED], [], [listener[1]])
    assert seen.summary == {"state": "not_connected", "port": None, "via": None, "up_seconds": None}
    assert [c["target"] for c in seen.connections] == ["other"] and "(1 other connection)" in seen.message
    idle, _child = stand_in()
    assert observe([idle], [UNUSED]).summary["state"] == "not_connected"
    assert observe([idle], [UNUSED]).connections == []
    gone = observe(["ERAt" + secrets.token_hex(4)], [UNUSED])
    assert gone.summary["state"] == "no_agent" and gone.processes == [] and gone.visible


def test_a_name_matches_argv0_as_well_as_comm(listener: t.Tuple[socket.socket, int],
                                               stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    _name, child = stand_in("--connect", f"127.0.0.1:{listener[1]}")
    by_argv0 = observe([Path(sys.executable).name], ["127.0.0.1"], [], [listener[1]])
    assert child.pid in [p["pid"] for p in by_argv0.processes]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start the agent as another user than the observer")
def test_an_unprivileged_observer_says_cannot_see_with_the_reason(
        listener: t.Tuple[socket.socket, int], stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    name, child = stand_in("--connect", f"127.0.0.1:{listener[1]}")
    code = ("import json, sys; from ansible_collections.protectnet.epns.plugins.module_utils._agent import observe; "
            "print(json.dumps(observe([sys.argv[1]], ['127.0.0.1'], [], [int(sys.argv[2])]).as_result()))")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code,
                           name, str(listener[1])], capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / ".build" / "collections")})
    seen = json.loads(done.stdout)
    assert seen["visible"] is False and seen["summary"]["state"] == "cannot_see"
    assert seen["processes"] == [{"pid": child.pid, "name": name}] and seen["connections"] == []
    assert f"(pid {child.pid}): /proc/{child.pid}/fd: Permission denied" in seen["reason"]
    assert "become: true" in seen["reason"] and seen["message"].startswith("cannot see the agent's connections: ")


def test_without_a_proc_to_read_it_cannot_see_rather_than_fail(tmp_path: Path) -> None:
    seen = observe(["ERAAgent"], [UNUSED], proc=str(tmp_path / "no-proc"))
    assert (seen.visible, seen.summary["state"]) == (False, "cannot_see")
    assert seen.reason and seen.reason.startswith(f"cannot list the processes in {tmp_path / 'no-proc'}: ")


@pytest.mark.parametrize(("call", "words"), [
    (lambda: observe([""]), "process_names: expected at least one process name, got ['']"),
    (lambda: observe(ports=[0]), "ports [0]: expected a non-empty list of TCP ports 1-65535"),
    (lambda: observe(ports=[]), "ports []: expected a non-empty list"),
    (lambda: observe(epns_addresses=["epns.eset.com"]), "epns_addresses: 'epns.eset.com' is not an IPv4 or IPv6"),
    (lambda: parse_proxy("proxy.lab"), "proxy 'proxy.lab': expected host:port or http://host:port"),
    (lambda: parse_proxy("socks5://proxy.lab:1080"), "scheme 'socks5' is not http"),
    (lambda: parse_proxy("http://proxy.lab:3128/path"), "proxy 'http://proxy.lab:3128/path': expected host:port"),
    (lambda: parse_proxy("proxy.lab:99999"), "with a port 1-65535"),
])
def test_bad_input_is_named_with_what_would_be_accepted(call: t.Callable[[], object], words: str) -> None:
    with pytest.raises(AgentConfigError, match=None) as caught:
        call()
    assert words in str(caught.value)


def test_a_proxy_password_is_refused_without_being_repeated() -> None:
    with pytest.raises(AgentConfigError) as caught:
        parse_proxy("http://user:s3cret-pw@proxy.lab:3128")
    assert "s3cret-pw" not in str(caught.value) and "user name or password" in str(caught.value)


def test_proxy_forms() -> None:
    assert [tuple(parse_proxy(p)) for p in ("proxy.lab:3128", "http://proxy.lab:3128/", "[2001:db8::20]:3128",
                                            "http://[2001:db8::20]:3129")] == [
        ("proxy.lab", 3128), ("proxy.lab", 3128), ("2001:db8::20", 3128), ("2001:db8::20", 3129)]


def _module(tmp_path: Path, args: t.Dict[str, t.Any], *extra: str) -> t.Dict[str, t.Any]:
    """The module through ansible itself (ad hoc, local connection, check mode), its JSON result."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "collections"),
               ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false", ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="false",
               ANSIBLE_HOME=str(tmp_path / ".ansible"), ANSIBLE_LOCAL_TEMP=str(tmp_path / ".tmp"),
               ANSIBLE_DEPRECATION_WARNINGS="false")
    done = subprocess.run([str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-i",
                           "localhost,", "-e", f"ansible_python_interpreter={sys.executable}", "--check",
                           "-m", "protectnet.epns.epns_agent_connection", "-a", json.dumps(args), *extra],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert "localhost | " in done.stdout, done.stdout + done.stderr
    # ad hoc output: "localhost | SUCCESS => {...}", after the error's own lines on failure (ansible-core 2.19+)
    status, _, document = done.stdout[done.stdout.index("localhost | "):].partition(" => ")
    return dict(json.loads(document), status=status.split("| ", 1)[1])


def test_the_module_reports_in_check_mode_without_change_and_names_a_bad_proxy(
        tmp_path: Path, listener: t.Tuple[socket.socket, int],
        stand_in: t.Callable[..., t.Tuple[str, subprocess.Popen]]) -> None:
    name, child = stand_in("--connect", f"127.0.0.1:{listener[1]}")
    result = _module(tmp_path, {"process_names": [name], "epns_addresses": ["127.0.0.1"], "ports": [listener[1]]})
    assert result["status"] == "SUCCESS" and result["changed"] is False, result
    assert result["summary"]["state"] == "connected"
    assert result["processes"] == [{"pid": child.pid, "name": name}]
    failed = _module(tmp_path, {"process_names": [name], "proxies": ["proxy.lab"]})
    assert failed["status"] == "FAILED!"
    assert failed["msg"] == "proxy 'proxy.lab': expected host:port or http://host:port with a port 1-65535"
