# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The probe's DNS stage in the resolver's own words. getaddrinfo cannot tell NXDOMAIN from "no
# address of that family", nor SERVFAIL from silence; so when it fails, times out or returns a
# sinkhole, the probe asks the nameservers of /etc/resolv.conf itself (RFC 1035 over UDP, A/AAAA)
# and names what each said. Sinkholes (a DNS filter's "blocked" answer) are recognised here, so no
# connection is ever made to them: 0.0.0.0 reaches the local host. Standard library only.
from __future__ import annotations

import ipaddress
import random
import socket
import struct
import threading
import time
import typing as t

from .. import _epns

RESOLV_CONF = "/etc/resolv.conf"
DNS_PORT = 53
MAX_NAMESERVERS = 3  # glibc uses the first three (MAXNS)
QTYPES = {"A": 1, "AAAA": 28}
FAMILY_QTYPES = {"ipv4": ("A",), "ipv6": ("AAAA",), "any": ("A", "AAAA")}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_CLASS_IN = 1
_FLAG_QR, _FLAG_TC, _FLAG_RD = 0x8000, 0x0200, 0x0100
_MAX_UDP = 4096

# Answers that mean "blocked by a DNS filter", never a server. Unspecified and loopback: what Pi-hole
# (BLOCKINGMODE=NULL), AdGuard Home (default blocking mode), NextDNS and Cloudflare for Families return.
# Cisco Umbrella/OpenDNS block pages: https://www.cisco.com/c/en/us/support/docs/security/umbrella/
# 224799-learn-the-umbrella-block-page-ip.html (A and AAAA). Overridable with dns_sinkhole_addresses.
UMBRELLA_BLOCK_PAGES = tuple(f"146.112.61.{n}" for n in (104, 105, 106, 107, 108, 110))
DEFAULT_SINKHOLES = ("0.0.0.0/8", "::/128", "127.0.0.0/8", "::1/128", *UMBRELLA_BLOCK_PAGES,
                     *(f"::ffff:{a}" for a in UMBRELLA_BLOCK_PAGES))

Network = t.Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class DnsFormatError(ValueError):
    """A DNS message this parser cannot read (short, inconsistent, or not an answer to our query)."""


class Message(t.NamedTuple):
    rcode: int
    truncated: bool
    addresses: t.List[str]


class Reply(t.NamedTuple):
    """What one nameserver said to one query; rcode is None when it said nothing usable (see error)."""

    server: str
    qtype: str
    rcode: t.Optional[str]
    addresses: t.List[str]
    error: t.Optional[str]
    truncated: bool = False
    elapsed: float = 0.0

    def words(self) -> str:
        if self.rcode is None:
            return f"{self.qtype} {self.error}"
        said = self.rcode
        if self.rcode == "NOERROR":
            said += " " + (", ".join(self.addresses) if self.addresses else f"with no {self.qtype} record")
        return f"{self.qtype} {said}" + (" (truncated, not retried over TCP)" if self.truncated else "")


# -- wire format ---------------------------------------------------------------------------------

def encode_query(qid: int, name: str, qtype: str) -> bytes:
    """A recursive query for one name and type, class IN (RFC 1035 4.1)."""
    labels = name.rstrip(".").encode("idna").split(b".")
    if not all(0 < len(label) <= 63 for label in labels):
        raise ValueError(f"{name!r} is not a name that DNS can carry")
    header = struct.pack("!HHHHHH", qid, _FLAG_RD, 1, 0, 0, 0)
    question = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    return header + question + struct.pack("!HH", QTYPES[qtype], _CLASS_IN)


def _skip_name(data: bytes, offset: int) -> int:
    """The offset just past a (possibly compressed) name; compression pointers end a name."""
    while True:
        if offset >= len(data):
            raise DnsFormatError("a name runs past the end of the message")
        length = data[offset]
        if length == 0:
            return offset + 1
        if length & 0xC0 == 0xC0:
            if offset + 2 > len(data):
                raise DnsFormatError("a compression pointer runs past the end of the message")
            return offset + 2
        if length & 0xC0:
            raise DnsFormatError(f"unknown label type 0x{length & 0xC0:02x}")
        offset += 1 + length


def _answers(data: bytes, offset: int, count: int, qtype: str) -> t.List[str]:
    wanted, size = QTYPES[qtype], 4 if qtype == "A" else 16
    family = socket.AF_INET if qtype == "A" else socket.AF_INET6
    found = []
    for _record in range(count):
        offset = _skip_name(data, offset)
        if offset + 10 > len(data):
            raise DnsFormatError("a record header runs past the end of the message")
        rtype, rclass, _ttl, rdlength = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        if offset + rdlength > len(data):
            raise DnsFormatError("record data runs past the end of the message")
        if rtype == wanted and rclass == _CLASS_IN and rdlength == size:
            found.append(socket.inet_ntop(family, data[offset:offset + rdlength]))
        offset += rdlength  # CNAMEs and other records before the address are skipped
    return found


def parse_response(data: bytes, qid: int, qtype: str) -> Message:
    """Rcode, TC flag and the addresses of qtype in the answer section. A truncated message keeps the
    addresses read before the cut instead of failing."""
    if len(data) < 12:
        raise DnsFormatError(f"{len(data)} bytes is shorter than a DNS header")
    rid, flags, qdcount, ancount = struct.unpack_from("!HHHH", data)
    if rid != qid or not flags & _FLAG_QR:
        raise DnsFormatError("not an answer to this query")
    truncated = bool(flags & _FLAG_TC)
    offset = 12
    try:
        for _question in range(qdcount):
            offset = _skip_name(data, offset) + 4
        addresses = _answers(data, offset, ancount, qtype)
    except DnsFormatError:
        if not truncated:
            raise
        addresses = []
    return Message(flags & 0x000F, truncated, addresses)


def rcode_name(rcode: int) -> str:
    return RCODES.get(rcode, f"RCODE{rcode}")


# -- asking the nameservers ----------------------------------------------------------------------

def nameservers(text: str) -> t.List[str]:
    """The nameserver lines of a resolv.conf, in order, as glibc reads them (first three valid ones)."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        address = fields[1].split("%", 1)[0]  # a link-local scope names an interface, not the server
        try:
            ipaddress.ip_address(address)
        except ValueError:
            continue
        found.append(address)
    return found[:MAX_NAMESERVERS]


def read_nameservers(path: t.Optional[str] = None) -> t.List[str]:
    try:
        with open(path or RESOLV_CONF, encoding="utf-8", errors="replace") as handle:
            return nameservers(handle.read())
    except OSError:
        return []


def ask(server: str, name: str, qtype: str, timeout: float) -> Reply:
    """One UDP query; never raises for network trouble. Answers with another id are ignored (a late or
    forged packet), so only this query's answer counts."""
    started = time.monotonic()
    qid = random.SystemRandom().randrange(1 << 16)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((server, DNS_PORT))  # read at call time: unit tests point it at a loopback server
            sock.send(encode_query(qid, name, qtype))
            while True:
                left = timeout - (time.monotonic() - started)
                if left <= 0:
                    raise socket.timeout()
                sock.settimeout(left)
                try:
                    message = parse_response(sock.recv(_MAX_UDP), qid, qtype)
                except DnsFormatError as exc:
                    if "this query" in str(exc):
                        continue
                    return Reply(server, qtype, None, [], f"malformed answer: {exc}",
                                 elapsed=time.monotonic() - started)
                return Reply(server, qtype, rcode_name(message.rcode), message.addresses, None,
                             message.truncated, time.monotonic() - started)
    except socket.timeout:
        return Reply(server, qtype, None, [], f"no answer within {timeout:.1f} s", elapsed=timeout)
    except (OSError, ValueError) as exc:
        return Reply(server, qtype, None, [], f"error: {exc}", elapsed=time.monotonic() - started)


def ask_all(servers: t.List[str], name: str, family: str, timeout: float) -> t.List[Reply]:
    """Every (server, type) pair at once, each in a daemon thread, all bounded by timeout."""
    pairs = [(server, qtype) for server in servers for qtype in FAMILY_QTYPES.get(family, ("A", "AAAA"))]
    replies: t.Dict[t.Tuple[str, str], Reply] = {}

    def one(server: str, qtype: str) -> None:
        replies[(server, qtype)] = ask(server, name, qtype, timeout)

    threads = [threading.Thread(target=one, args=pair, name="epns-dns-ask", daemon=True) for pair in pairs]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 0.05
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [replies.get(pair) or Reply(pair[0], pair[1], None, [], f"no answer within {timeout:.1f} s",
                                       elapsed=timeout) for pair in pairs]


# -- what it means -------------------------------------------------------------------------------

_DEFINITIVE = ("nxdomain", "addresses", "nodata")


def _server_outcome(replies: t.List[Reply]) -> str:
    """One nameserver's answer for the name, as glibc weighs it: NXDOMAIN or NOERROR end the search;
    SERVFAIL, REFUSED and silence send glibc on to the next nameserver."""
    rcodes = [r.rcode for r in replies]
    if "NXDOMAIN" in rcodes:
        return "nxdomain"
    if any(r.rcode == "NOERROR" and r.addresses for r in replies):
        return "addresses"
    if rcodes and all(rc == "NOERROR" for rc in rcodes):
        return "nodata"
    if "REFUSED" in rcodes and "SERVFAIL" not in rcodes:
        return "refused"
    if any(rc is not None for rc in rcodes):
        return "servfail"  # SERVFAIL, and the rarer FORMERR/NOTIMP: the resolver failed to answer
    return "silent"


_OUTCOME_CLASS = {"nxdomain": _epns.DNS_NXDOMAIN, "nodata": _epns.DNS_NO_ANSWER, "addresses": _epns.DNS_NO_ANSWER,
                  "servfail": _epns.DNS_SERVFAIL, "refused": _epns.DNS_REFUSED, "silent": _epns.DNS_TIMEOUT}


def said(replies: t.List[Reply]) -> str:
    """'198.18.1.53 answered A NXDOMAIN, AAAA NXDOMAIN; 2001:db8::53 answered ...'"""
    by_server: t.Dict[str, t.List[Reply]] = {}
    for reply in replies:
        by_server.setdefault(reply.server, []).append(reply)
    return "; ".join(f"{server} answered {', '.join(r.words() for r in rs)}" for server, rs in by_server.items())


def failure_class(replies: t.List[Reply]) -> str:
    """The class for a failed lookup: the first nameserver with a definitive answer decides, as in glibc."""
    outcomes = []
    for server in dict.fromkeys(r.server for r in replies):
        outcome = _server_outcome([r for r in replies if r.server == server])
        if outcome in _DEFINITIVE:
            return _OUTCOME_CLASS[outcome]
        outcomes.append(outcome)
    for outcome in ("servfail", "refused"):
        if outcome in outcomes:
            return _OUTCOME_CLASS[outcome]
    return _epns.DNS_TIMEOUT


def explain_failure(name: str, family: str, error: str, servers: t.List[str],
                    replies: t.List[Reply]) -> t.Tuple[str, str]:
    """(class, message) for a lookup that returned no address; error is getaddrinfo's own words."""
    wanted = {"ipv4": "IPv4 ", "ipv6": "IPv6 "}.get(family)
    failed = f"{name} has no {wanted}address ({error})" if wanted else f"{name} does not resolve ({error})"
    if not servers:
        return _epns.DNS_NO_ANSWER, (f"{failed}; {RESOLV_CONF} names no nameserver, so only other name sources "
                                     "(nsswitch.conf: /etc/hosts, ...) were asked")
    cls = failure_class(replies)
    if cls == _epns.DNS_NO_ANSWER and any(r.addresses for r in replies):
        return cls, (f"{failed}, although DNS has one: {said(replies)}; the host's name service "
                     "(nsswitch.conf hosts line) does not use that answer")
    return cls, f"{failed}; asked directly, {said(replies)}"


def explain_timeout(name: str, limit: str, servers: t.List[str], replies: t.List[Reply]) -> t.Tuple[str, str]:
    """limit: what bounded the stage, e.g. 'connect_timeout (3 s)'."""
    if replies:
        heard = f"asked directly, {said(replies)}"
    elif servers:
        heard = f"no time was left to ask its nameservers ({', '.join(servers)}) directly"
    else:
        heard = f"{RESOLV_CONF} names no nameserver"
    return _epns.DNS_TIMEOUT, f"the resolver gave no answer for {name} within {limit}; {heard}"


def explain_sinkhole(name: str, sinkholed: t.List[str], replies: t.List[Reply]) -> t.Tuple[str, str]:
    heard = f"; asked directly, {said(replies)}" if replies else ""
    return _epns.DNS_SINKHOLED, (f"{name} resolves only to {', '.join(sinkholed)}, a DNS filter's block answer "
                                 f"(sinkhole), not EPNS{heard}")


# -- sinkholes -----------------------------------------------------------------------------------

def parse_sinkholes(values: t.Iterable[str]) -> t.List[Network]:
    """Addresses or CIDRs; ValueError names the first value that is neither."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4/IPv6 address or CIDR") from None
    return networks


def is_sinkhole(address: str, networks: t.List[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip.version == net.version and ip in net for net in networks)
