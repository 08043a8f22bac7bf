"""The probe's own DNS client (_probe/_dns): wire format, resolv.conf, what an answer means, sinkholes; and the
engine asking a loopback nameserver after getaddrinfo failed."""
from __future__ import annotations

import socket
import struct
import threading
import time
import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils import _epns as E
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _dns as D
from ansible_collections.protectnet.epns.plugins.module_utils._probe import _engine as P
from ansible_collections.protectnet.epns.plugins.module_utils._probe._options import ProbeConfigError, ProbeOptions

QNAME = b"\x04epns\x04eset\x03com\x00"


def header(qid: int = 0x1234, flags: int = 0x8180, qd: int = 1, an: int = 0) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, qd, an, 0, 0)


def question(qtype: int = 1) -> bytes:
    return QNAME + struct.pack("!HH", qtype, 1)


def record(rtype: int, rdata: bytes, name: bytes = b"\xc0\x0c") -> bytes:
    return name + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata


A_10 = record(1, socket.inet_aton("198.18.1.10"))
AAAA_10 = record(28, socket.inet_pton(socket.AF_INET6, "2001:db8:0:1::10"))
CNAME = record(5, b"\x03cdn\xc0\x11")  # epns.eset.com CNAME cdn.eset.com (compressed)


def test_the_query_is_rfc_1035() -> None:
    assert D.encode_query(0x1234, "epns.eset.com", "A") == header(flags=0x0100) + question(1)
    assert D.encode_query(1, "epns.eset.com.", "AAAA")[12:] == question(28)


@pytest.mark.parametrize("name", ["", "a..b", "x" * 64 + ".com"])
def test_names_dns_cannot_carry_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        D.encode_query(1, name, "A")


@pytest.mark.parametrize(("message", "qtype", "expected"), [
    (header(an=1) + question() + A_10, "A", (0, False, ["198.18.1.10"])),
    (header(an=1) + question(28) + AAAA_10, "AAAA", (0, False, ["2001:db8:0:1::10"])),
    (header(an=2) + question() + CNAME + A_10, "A", (0, False, ["198.18.1.10"])),
    (header(an=1) + question() + AAAA_10, "A", (0, False, [])),  # another type is not an answer
    (header(flags=0x8183) + question(), "A", (3, False, [])),  # NXDOMAIN
    (header(flags=0x8182) + question(), "A", (2, False, [])),  # SERVFAIL
    (header(flags=0x8185) + question(), "A", (5, False, [])),  # REFUSED
    (header(an=0) + question(), "A", (0, False, [])),  # NODATA
    (header(flags=0x8380, an=2) + question() + A_10 + A_10[:7], "A", (0, True, [])),  # TC, cut mid-record
    (header(flags=0x8380, an=0) + question(), "A", (0, True, [])),
])
def test_answers_are_read(message: bytes, qtype: str, expected: tuple) -> None:
    assert tuple(D.parse_response(message, 0x1234, qtype)) == expected


@pytest.mark.parametrize(("message", "words"), [
    (b"\x12\x34\x81", "shorter than a DNS header"),
    (header(qid=0x4321) + question(), "not an answer to this query"),
    (header(flags=0x0100) + question(), "not an answer to this query"),  # a query, not a response
    (header(an=1) + question() + A_10[:-2], "record data runs past"),
    (header() + b"\x04epns", "runs past the end"),
    (header() + b"\x80xx", "unknown label type"),
])
def test_malformed_answers_raise_a_format_error(message: bytes, words: str) -> None:
    with pytest.raises(D.DnsFormatError, match=words):
        D.parse_response(message, 0x1234, "A")


@pytest.mark.parametrize(("text", "servers"), [
    ("nameserver 198.18.1.53\nnameserver 2001:db8:0:1::53\noptions timeout:3\n", ["198.18.1.53", "2001:db8:0:1::53"]),
    ("# nameserver 10.0.0.1\nsearch lab\nnameserver fe80::1%eth0\n", ["fe80::1"]),
    ("nameserver not-an-ip\nnameserver\nnameserver 10.0.0.2\n", ["10.0.0.2"]),
    ("".join(f"nameserver 10.0.0.{i}\n" for i in range(1, 6)), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
    ("", []),
])
def test_resolv_conf_nameservers_as_glibc_reads_them(text: str, servers: list) -> None:
    assert D.nameservers(text) == servers


def reply(server: str, qtype: str, rcode: str | None, addresses: t.Sequence[str] = ()) -> D.Reply:
    return D.Reply(server, qtype, rcode, list(addresses), None if rcode else "no answer within 1.0 s")


@pytest.mark.parametrize(("replies", "cls"), [
    ([reply("a", "A", "NXDOMAIN"), reply("a", "AAAA", "NXDOMAIN")], E.DNS_NXDOMAIN),
    ([reply("a", "A", "SERVFAIL"), reply("a", "AAAA", "SERVFAIL")], E.DNS_SERVFAIL),
    ([reply("a", "A", "REFUSED")], E.DNS_REFUSED),
    ([reply("a", "A", None), reply("b", "A", None)], E.DNS_TIMEOUT),
    ([reply("a", "A", "NOERROR"), reply("a", "AAAA", "NOERROR")], E.DNS_NO_ANSWER),
    ([reply("a", "AAAA", "NOERROR", ["2001:db8::1"])], E.DNS_NO_ANSWER),
    # glibc moves on after SERVFAIL, REFUSED or silence; the first definitive answer decides
    ([reply("a", "A", "SERVFAIL"), reply("b", "A", "NXDOMAIN")], E.DNS_NXDOMAIN),
    ([reply("a", "A", None), reply("b", "A", "SERVFAIL")], E.DNS_SERVFAIL),
    ([reply("a", "A", "REFUSED"), reply("b", "A", "SERVFAIL")], E.DNS_SERVFAIL),
    ([reply("a", "A", "FORMERR")], E.DNS_SERVFAIL),
    ([reply("a", "A", "NXDOMAIN"), reply("b", "A", "NOERROR", ["10.0.0.1"])], E.DNS_NXDOMAIN),
])
def test_failure_class_is_what_the_first_definitive_nameserver_said(replies: list, cls: str) -> None:
    assert D.failure_class(replies) == cls


def test_the_message_quotes_each_nameserver() -> None:
    cls, message = D.explain_failure("epns.eset.com", "any", "[Errno -2] Name or service not known",
                                     ["198.18.1.53"], [reply("198.18.1.53", "A", "NXDOMAIN"),
                                                       reply("198.18.1.53", "AAAA", "NXDOMAIN")])
    assert cls == E.DNS_NXDOMAIN
    assert "198.18.1.53 answered A NXDOMAIN, AAAA NXDOMAIN" in message and "Errno -2" in message
    cls, message = D.explain_failure("epns.eset.com", "ipv6", "x", ["10.0.0.1"],
                                     [reply("10.0.0.1", "AAAA", "NOERROR")])
    assert cls == E.DNS_NO_ANSWER and "no IPv6 address" in message and "AAAA NOERROR with no AAAA record" in message
    cls, message = D.explain_failure("epns.eset.com", "any", "x", [], [])
    assert cls == E.DNS_NO_ANSWER and "names no nameserver" in message
    cls, message = D.explain_failure("epns.eset.com", "any", "x", ["10.0.0.1"],
                                     [reply("10.0.0.1", "A", "NOERROR", ["10.1.1.1"])])
    assert cls == E.DNS_NO_ANSWER and "nsswitch.conf" in message and "10.1.1.1" in message


@pytest.mark.parametrize(("address", "sinkhole"), [
    ("0.0.0.0", True), ("::", True), ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True),
    ("146.112.61.104", True), ("::ffff:146.112.61.110", True),
    ("198.18.1.10", False), ("2001:db8:0:1::10", False), ("146.112.61.109", False), ("fe80::1%eth0", False),
])
def test_default_sinkholes(address: str, sinkhole: bool) -> None:
    assert D.is_sinkhole(address, D.parse_sinkholes(D.DEFAULT_SINKHOLES)) is sinkhole


@pytest.mark.parametrize(("values", "error"), [
    (["10.0.0.300"], "dns_sinkhole_addresses: '10.0.0.300' is not an IPv4/IPv6 address or CIDR"),
    ("10.0.0.1", "must be a list"),
])
def test_sinkhole_option_names_the_bad_value(run: t.Any, values: t.Any, error: str) -> None:
    with pytest.raises(ProbeConfigError, match=error):
        run(dns_sinkhole_addresses=values)


# -- the engine, with a loopback nameserver -------------------------------------------------------------

class FakeNameserver:
    """UDP on 127.0.0.1 answering every query with `rcode` and, for A, `a` (after `delay` seconds)."""

    def __init__(self, rcode: int = 0, a: t.Sequence[str] = (), delay: float = 0.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.rcode, self.a, self.delay = rcode, list(a), delay
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            qid, qtype = struct.unpack_from("!H", data)[0], struct.unpack_from("!H", data, len(data) - 4)[0]
            answers = [record(1, socket.inet_aton(a)) for a in self.a] if qtype == 1 else []
            time.sleep(self.delay)
            try:
                self.sock.sendto(header(qid, 0x8180 | self.rcode, 1, len(answers)) + data[12:] + b"".join(answers),
                                 peer)
            except OSError:
                return  # closed by the test while this answer waited

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def nameserver(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> t.Iterator[t.Callable[..., FakeNameserver]]:
    started: list = []

    def start(**kwargs: t.Any) -> FakeNameserver:
        server = FakeNameserver(**kwargs)
        started.append(server)
        conf = tmp_path / "resolv.conf"
        conf.write_text("nameserver 127.0.0.1\n")
        monkeypatch.setattr(D, "RESOLV_CONF", str(conf))
        monkeypatch.setattr(D, "DNS_PORT", server.port)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def run(pki: t.Any) -> t.Callable[..., dict]:
    def run(**kwargs: t.Any) -> dict:
        kwargs.setdefault("host", "epns.test")
        kwargs.setdefault("ca_path", str(pki.ca))
        kwargs.setdefault("timeout", 4.0)
        kwargs.setdefault("connect_timeout", 1.0)
        return P.run_probe(ProbeOptions(**kwargs))

    return run


def resolver(answers: t.Sequence[str] = (), error: int | None = None, delay: float = 0.0) -> t.Callable[..., t.Any]:
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: t.Any, family: int = 0, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if host != "epns.test":
            return real(host, port, family, *args, **kwargs)
        time.sleep(delay)
        if error is not None:
            raise socket.gaierror(error, "getaddrinfo's words")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, 0, 0, 0) if ":" in a else (a, 0)) for a in answers]

    return getaddrinfo


@pytest.mark.parametrize(("rcode", "cls", "words"), [
    (3, E.DNS_NXDOMAIN, "127.0.0.1 answered A NXDOMAIN, AAAA NXDOMAIN"),
    (2, E.DNS_SERVFAIL, "127.0.0.1 answered A SERVFAIL, AAAA SERVFAIL"),
    (5, E.DNS_REFUSED, "A REFUSED"),
    (0, E.DNS_NO_ANSWER, "A NOERROR with no A record"),
])
def test_a_failed_lookup_is_explained_by_the_nameserver(run: t.Any, nameserver: t.Any, monkeypatch: t.Any,
                                                         rcode: int, cls: str, words: str) -> None:
    nameserver(rcode=rcode)
    monkeypatch.setattr(socket, "getaddrinfo", resolver(error=socket.EAI_AGAIN))
    result = run()
    failure = result["dns"]["failure"]
    assert failure["class"] == cls and failure["stage"] == "dns" and words in failure["message"], failure
    assert [(n["server"], n["type"]) for n in result["dns"]["nameservers"]] == [("127.0.0.1", "A"),
                                                                              ("127.0.0.1", "AAAA")]
    assert all(p["failure"]["class"] == cls and p["attempts"] == [] for p in result["paths"])


def test_a_resolver_slower_than_connect_timeout_is_dns_timeout(run: t.Any, nameserver: t.Any,
                                                               monkeypatch: t.Any) -> None:
    nameserver(a=["198.18.1.10"], delay=2)
    monkeypatch.setattr(socket, "getaddrinfo", resolver(["198.18.1.10"], delay=2))
    started = time.monotonic()
    result = run(connect_timeout=0.4, timeout=3)
    assert time.monotonic() - started < 1.5  # 0.4 s for getaddrinfo, 0.4 s for asking the nameserver
    failure = result["dns"]["failure"]
    assert failure["class"] == E.DNS_TIMEOUT and "connect_timeout (0.4 s)" in failure["message"], failure
    assert "127.0.0.1 answered A no answer within 0.4 s" in failure["message"]


@pytest.mark.parametrize(("answers", "option", "sinkholed"), [
    (["0.0.0.0", "::"], None, ["0.0.0.0", "::"]),
    (["127.0.0.1"], None, ["127.0.0.1"]),
    (["10.9.9.9"], ["10.9.9.0/24"], ["10.9.9.9"]),
    (["0.0.0.0"], [], ["0.0.0.0"]),  # no list can make the unspecified address usable
])
def test_a_sinkhole_answer_is_never_connected_to(run: t.Any, nameserver: t.Any, monkeypatch: t.Any,
                                                 answers: list, option: t.Any, sinkholed: list) -> None:
    nameserver(a=[a for a in answers if ":" not in a])
    monkeypatch.setattr(socket, "getaddrinfo", resolver(answers))
    result = run(dns_sinkhole_addresses=option)
    assert result["dns"]["failure"]["class"] == E.DNS_SINKHOLED
    assert result["dns"]["sinkholed"] == sinkholed and result["dns"]["addresses"] == []
    assert sinkholed[0] in result["dns"]["failure"]["message"]
    assert "127.0.0.1 answered" in result["dns"]["failure"]["message"]
    assert all(p["attempts"] == [] for p in result["paths"])


def test_only_the_sinkholed_addresses_are_left_out(run: t.Any, monkeypatch: t.Any, lo: t.Any) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", resolver(["0.0.0.0", "127.0.0.1"]))
    result = run(dns_sinkhole_addresses=[], primary_port=lo.free_port(), fallback_port=lo.free_port())
    assert result["dns"]["sinkholed"] == ["0.0.0.0"] and result["dns"]["addresses"] == ["127.0.0.1"]
    assert result["dns"]["failure"] is None and result["dns"]["nameservers"] == []
    assert {a["address"] for p in result["paths"] for a in p["attempts"]} == {"127.0.0.1"}


def test_an_address_as_host_is_no_dns_answer(run: t.Any, lo: t.Any) -> None:
    result = run(host="127.0.0.1", primary_port=lo.free_port(), fallback_port=lo.free_port())
    assert result["dns"]["sinkholed"] == [] and result["dns"]["addresses"] == ["127.0.0.1"]
