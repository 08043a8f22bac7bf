"""The one host-name rule, table-driven over the four options that use it: the probe's host and server_name, the
agent policy's proxy_host, proxy_connect_ports' epns_host and the ESET PROTECT API's server."""
from __future__ import annotations

import typing as t

import pytest
from ansible_collections.protectnet.epns.plugins.module_utils._hostname import HostNameError, check_host

# The arguments each caller passes (plugins/module_utils/_probe/_settings.py, plugins/modules/agent_proxy_policy.py,
# plugins/module_utils/_proxy/_model.py, plugins/module_utils/_eset_api/_endpoints.py).
USES: t.Dict[str, t.Dict[str, t.Any]] = {
    "probe": {"what": "host", "zone_ids": True, "port_option": "primary_port"},
    "policy": {"what": "proxy_host", "brackets": True, "port_option": "proxy_port"},
    "epns_host": {"what": "epns_host", "addresses": False},
    "server": {"what": "server", "brackets": True, "port_option": "port"},
}
LONG_LABEL = "a" * 63
LONGEST = ".".join([LONG_LABEL] * 3 + ["a" * 61])  # 253 characters
NO = None

# value: what each use answers, in the order of USES (the normal form, or NO for refused).
TABLE: t.List[t.Tuple[str, t.Tuple[t.Optional[str], ...]]] = [
    ("epns.eset.com", ("epns.eset.com",) * 4),
    ("EPNS.Eset.COM", ("epns.eset.com",) * 4),
    ("epns.eset.com.", ("epns.eset.com",) * 4),
    ("localhost", ("localhost",) * 4),
    ("a", ("a",) * 4),
    ("a_b.example", ("a_b.example",) * 4),
    ("_srv.example", ("_srv.example",) * 4),
    ("a--b.example", ("a--b.example",) * 4),
    ("xn--bcher-kva.example", ("xn--bcher-kva.example",) * 4),
    ("123abc.example", ("123abc.example",) * 4),
    (LONG_LABEL + ".example", (LONG_LABEL + ".example",) * 4),
    (LONGEST, (LONGEST,) * 4),
    (LONGEST + ".", (LONGEST,) * 4),
    ("-a.example", (NO,) * 4),
    ("a-.example", (NO,) * 4),
    ("a..b", (NO,) * 4),
    (".a", (NO,) * 4),
    (".", (NO,) * 4),
    ("-", (NO,) * 4),
    ("", (NO,) * 4),
    ("a" * 64 + ".example", (NO,) * 4),
    (LONGEST + "a", (NO,) * 4),
    ("999.1.1.1", (NO,) * 4),
    ("1.2.3", (NO,) * 4),
    ("1234", (NO,) * 4),
    ("1.2.3.4.5", (NO,) * 4),
    ("10.0.0.1", ("10.0.0.1", "10.0.0.1", NO, "10.0.0.1")),
    ("2001:db8::1", ("2001:db8::1", "2001:db8::1", NO, "2001:db8::1")),
    ("2001:DB8:0::1", ("2001:db8::1", "2001:db8::1", NO, "2001:db8::1")),
    ("::1", ("::1", "::1", NO, "::1")),
    ("::ffff:10.0.0.1", ("::ffff:a00:1", "::ffff:a00:1", NO, "::ffff:a00:1")),
    ("[2001:db8::1]", (NO, "2001:db8::1", NO, "2001:db8::1")),
    ("fe80::1%eth0", ("fe80::1%eth0", NO, NO, NO)),
    ("[fe80::1%eth0]", (NO,) * 4),
    ("10.0.0.1%eth0", (NO,) * 4),
    ("fe80::1%", (NO,) * 4),
    ("2001:db8::zz", (NO,) * 4),
    (":::", (NO,) * 4),
    ("%", (NO,) * 4),
    ("a%b", (NO,) * 4),
    ("bridge.lab:3128", (NO,) * 4),
    ("bridge.lab:abc", (NO,) * 4),
    ("[2001:db8::1]:3128", (NO,) * 4),
    ("http://bridge.lab", (NO,) * 4),
    ("bridge.lab/x", (NO,) * 4),
    ("u:p@bridge.lab", (NO,) * 4),
    ("bad host!", (NO,) * 4),
    (" epns.eset.com", (NO,) * 4),
    ("epns.eset.com ", (NO,) * 4),
]


@pytest.mark.parametrize(("value", "answers"), TABLE, ids=[repr(value) for value, _answers in TABLE])
def test_each_use_accepts_or_refuses(value: str, answers: t.Tuple[t.Optional[str], ...]) -> None:
    for (use, kwargs), expected in zip(USES.items(), answers):
        if expected is None:
            with pytest.raises(HostNameError, match="accepted: a DNS name"):
                check_host(value, **kwargs)
        else:
            assert check_host(value, **kwargs) == expected, use


@pytest.mark.parametrize(("value", "kwargs", "words"), [
    ("http://bridge.lab", USES["policy"], r"proxy_host: 'http://bridge.lab' is not a host name or address: write it "
                                          r"without a scheme \(not http://\.\.\.\); accepted"),
    ("bridge.lab/x", USES["policy"], "write it without a path"),
    ("bridge.lab:3128", USES["policy"], "write it without a port; set proxy_port"),
    ("bridge.lab:3128", USES["epns_host"], "epns_host: 'bridge.lab:3128' is not a host name: write it without a "
                                           "port; accepted"),
    ("bad host!", USES["policy"], "proxy_host: 'bad host!' is not a valid host name or address; accepted: a DNS "
                                  "name such as epns.eset.com"),
    ("10.0.0.1", USES["epns_host"], r"is not a valid host name; accepted: a DNS name such as epns.eset.com \(labels"),
    ("[fe80::1]x", USES["policy"], r"or an IPv4 or IPv6 address \(in brackets or bare\)$"),
    ("x!", USES["probe"], r"or an IPv4 or IPv6 address \(with or without a zone such as %eth0\)$"),
])
def test_message_names_the_value_the_problem_and_what_is_accepted(value: str, kwargs: t.Dict[str, t.Any],
                                                                   words: str) -> None:
    with pytest.raises(HostNameError, match=words):
        check_host(value, **kwargs)


@pytest.mark.parametrize("value", [None, 5, ["epns.eset.com"]])
def test_a_value_that_is_not_text_is_refused(value: t.Any) -> None:
    with pytest.raises(HostNameError, match=f"host: {value!r} is not a valid host name or address".replace("[", r"\[")):
        check_host(value, "host")
