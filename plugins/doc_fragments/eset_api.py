# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The connection options of every module that talks to the ESET PROTECT REST API, written once.
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  deployment:
    description:
      - Which ESET PROTECT to talk to. V(on_prem) is ESET PROTECT On-Prem 13.0 or later (one origin,
        C(https://SERVER:9443), login with C(POST /GetTokens)); versions before 13.0 have no REST API.
        V(cloud) is ESET PROTECT Cloud through ESET Connect (one host per service and region, OAuth login).
      - Falls back to the environment variable E(ESET_PROTECT_DEPLOYMENT).
    type: str
    choices: [on_prem, cloud]
    default: on_prem
  server:
    description:
      - Host name or address of the ESET PROTECT On-Prem server (its REST API must be enabled in More > Settings).
      - Required when O(deployment=on_prem), unless O(api_urls) gives the base URLs.
      - Falls back to E(ESET_PROTECT_SERVER).
    type: str
    aliases: [hostname]
  port:
    description: The On-Prem REST API port. Falls back to E(ESET_PROTECT_PORT).
    type: int
    default: 9443
  region:
    description:
      - The ESET Connect region of the cloud tenant; services are reached at C(https://REGION.SERVICE.eset.systems)
        and tokens at C(https://REGION.business-account.iam.eset.systems/oauth/token).
      - Required when O(deployment=cloud), unless O(api_urls) gives every base URL.
      - Falls back to E(ESET_PROTECT_REGION).
    type: str
    choices: [eu, de, us, jpn, ca]
  username:
    description:
      - The API user. On-Prem it needs the API permission set (the built-in Administrator cannot use the API);
        in the cloud it is an ESET Connect API user with Integrations enabled.
      - Falls back to E(ESET_PROTECT_USERNAME).
    type: str
    required: true
  password:
    description:
      - The API user's password. Never shown in results, diffs, logs or error messages.
      - Falls back to E(ESET_PROTECT_PASSWORD), so an AWX/AAP custom credential type can inject it.
    type: str
    required: true
  domain_user:
    description: On-Prem only. The user is an Active Directory user (sends C(is_domain_user)).
    type: bool
    default: false
  ca_path:
    description:
      - A PEM file with the CA certificates that issued the server's certificate (On-Prem servers usually have a
        self-signed or internal CA). Without it the controller's system trust store is used.
      - Falls back to E(ESET_PROTECT_CA_PATH).
    type: path
  validate_certs:
    description:
      - Verify the server's TLS certificate. Set V(false) only by name, for a test server you cannot verify; the
        module then warns, because the password crosses an unverified connection. There is no environment
        variable for this option on purpose.
    type: bool
    default: true
  timeout:
    description: Seconds one HTTP request may take.
    type: float
    default: 30
  retries:
    description:
      - How many times one call is retried after HTTP 429, 502, 503, 504 or a connection failure, with exponential
        backoff capped at 30 seconds (Retry-After is honoured up to 60 seconds). V(0) does not retry.
      - A call that creates something (C(POST /v2/policies), C(POST /v2/policy-assignments)) is never repeated
        blindly, because the server may have made the change and lost its answer. It is retried at once only after
        a 429 or a refused connection; after a 5xx or a lost answer the module first looks for what the call would
        have created, goes on with it if it is there, and only otherwise creates again (within O(retries)).
    type: int
    default: 6
  api_urls:
    description:
      - "Base URLs that replace the computed ones, keyed by service (C(policy-management), C(device-management),
        C(business-account) for the token endpoint, C(iam), C(configuration) for the server settings calls of
        M(protectnet.epns.wol_multicast)) or C(default) for every service not named.
        For example C({default: https://127.0.0.1:8443}) for an API behind a reverse proxy or a test server."
      - A value is C(https://HOST[:PORT][/PREFIX]) without credentials, query or fragment.
    type: dict
notes:
  - HTTP goes through ansible-core's C(ansible.module_utils.urls); no other Python package is needed. The proxy
    environment variables (C(https_proxy), C(no_proxy)) of the host that runs the module apply.
  - Tokens are renewed before they expire and once after a C(401); a cloud C(202) answer is collected with its
    C(response-id). Errors name the HTTP status, the call, the body and ESET's C(request-id).
  - Nothing in this collection has been tested against a real ESET PROTECT server; the tests use an emulator built
    from ESET's published API descriptions.
"""

    # The same connection options for plugins (the inventory plugin eset_protect): Ansible reads a plugin's
    # environment variables from `env:` entries, where a module has argspec fallbacks.
    PLUGIN = r"""
options:
  deployment:
    description:
      - Which ESET PROTECT to talk to. V(on_prem) is ESET PROTECT On-Prem 13.0 or later (one origin,
        C(https://SERVER:9443), login with C(POST /GetTokens)). V(cloud) is ESET PROTECT Cloud through ESET Connect
        (one host per service and region, OAuth login).
    type: str
    choices: [on_prem, cloud]
    default: on_prem
    env:
      - name: ESET_PROTECT_DEPLOYMENT
  server:
    description:
      - Host name or address of the ESET PROTECT On-Prem server (its REST API enabled in More > Settings).
      - Required when O(deployment=on_prem), unless O(api_urls) gives the base URLs.
    type: str
    aliases: [hostname]
    env:
      - name: ESET_PROTECT_SERVER
  port:
    description: The On-Prem REST API port.
    type: int
    default: 9443
    env:
      - name: ESET_PROTECT_PORT
  region:
    description:
      - The ESET Connect region of the cloud tenant (C(https://REGION.SERVICE.eset.systems)).
      - Required when O(deployment=cloud), unless O(api_urls) gives every base URL.
    type: str
    choices: [eu, de, us, jpn, ca]
    env:
      - name: ESET_PROTECT_REGION
  username:
    description:
      - The API user (On-Prem with the API permission set, not the built-in Administrator; in the cloud an
        ESET Connect API user with Integrations enabled).
    type: str
    required: true
    env:
      - name: ESET_PROTECT_USERNAME
  password:
    description:
      - The API user's password. Never shown in warnings, errors, the inventory or the cache.
    type: str
    required: true
    env:
      - name: ESET_PROTECT_PASSWORD
  domain_user:
    description: On-Prem only. The user is an Active Directory user (sends C(is_domain_user)).
    type: bool
    default: false
  ca_path:
    description:
      - A PEM file with the CA certificates that issued the server's certificate. Without it the controller's
        system trust store is used.
    type: path
    env:
      - name: ESET_PROTECT_CA_PATH
  validate_certs:
    description:
      - Verify the server's TLS certificate. Set V(false) only by name, for a test server you cannot verify; a
        warning says so, because the password crosses an unverified connection. There is no environment variable
        for this option on purpose.
    type: bool
    default: true
  timeout:
    description: Seconds one HTTP request may take.
    type: float
    default: 30
  retries:
    description:
      - How many times one call is retried after HTTP 429, 502, 503, 504 or a connection failure, with exponential
        backoff capped at 30 seconds (Retry-After is honoured up to 60 seconds). V(0) does not retry.
    type: int
    default: 6
  api_urls:
    description:
      - "Base URLs that replace the computed ones, keyed by service (C(device-management), C(business-account) for
        the token endpoint) or C(default) for every service not named, for example
        C({default: https://127.0.0.1:8443}) for an API behind a reverse proxy or a test server."
      - A value is C(https://HOST[:PORT][/PREFIX]) without credentials, query or fragment.
    type: dict
notes:
  - An environment variable set to the empty string counts as unset (AWX injects one for an empty credential field).
  - Tokens are renewed before they expire and once after a C(401); a cloud C(202) answer is collected with its
    C(response-id). Errors name the HTTP status, the call and ESET's C(request-id).
  - Nothing in this collection has been tested against a real ESET PROTECT server; the tests use an emulator built
    from ESET's published API descriptions.
"""
