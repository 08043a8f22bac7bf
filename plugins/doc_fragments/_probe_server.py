# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: the epns_probe options of the server path (a fragment keeps the module within its
# size limit; ansible-doc shows them with the module's own options).
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  eset_server:
    description:
      - The ESET PROTECT server as the agents were installed with it (C(--hostname) of the agent installer, or the
        server in the agent's policy), a host name or an address. Given, the probe also checks the server path
        the agent takes after a wake-up call, TCP and TLS to O(eset_server_port), directly (unless O(direct=false))
        and through each of O(proxies) (HTTP CONNECT), and reports it in RV(server_paths) and RV(server_verdict).
      - The certificate chain is verified against O(eset_server_ca_path) only, and the host name is checked against
        this value as the agent connects by it; a certificate for host C(*) (ESET PROTECT's default server
        certificate) matches any name.
      - Not checked are the agent protocol above TLS, the agent's own certificate and whether the server accepts it.
        A server that asks for the agent's certificate after its own was verified counts as reached.
      - The server path never changes RV(verdict) nor makes the task fail; a server path that fails is named in a
        warning and in the failure message.
    type: str
  eset_server_port:
    description:
      - The ESET PROTECT server's agent port (the port agents replicate to).
    type: int
    default: 2222
  eset_server_ca_path:
    description:
      - The PEM file (or OpenSSL hashed directory) of the ESET PROTECT server's certification authority (console -
        More, Certification Authorities, export the public key). Required with O(eset_server); the agent trusts
        only this CA, so the system CA store and O(ca_path) play no part in the server path.
    type: path
"""
