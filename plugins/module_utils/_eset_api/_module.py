# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""Glue between AnsibleModule and the client: every token becomes a no_log value, warnings go to the module."""
from __future__ import annotations

import typing as t

from ._client import ConnectionOptions, EsetClient
from ._errors import EsetConfigError


def client_from_module(module: t.Any) -> EsetClient:
    options = ConnectionOptions.from_params(module.params)
    try:
        return EsetClient(options, warn=module.warn, log=module.debug, on_secret=module.no_log_values.add)
    except EsetConfigError as exc:
        module.fail_json(msg=str(exc))
        raise  # unreachable: fail_json exits


def api_summary(client: EsetClient) -> t.Dict[str, t.Any]:
    """Counters for the result: how many requests, retries, token renewals and collected 202 answers."""
    stats = client.stats
    return {"deployment": client.options.deployment, "requests": stats.requests, "retries": stats.retries,
            "reauthentications": stats.reauthentications, "logins": client.tokens.logins,
            "token_refreshes": getattr(client.tokens, "refreshes", 0), "collected_202": stats.collected_202}
