# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
"""The connection options every ESET PROTECT API module shares (documented once in doc fragment ``eset_api``)."""
from __future__ import annotations

import typing as t

from ansible.module_utils.basic import env_fallback

from ._endpoints import DEPLOYMENTS, REGIONS

ENV_DEPLOYMENT = "ESET_PROTECT_DEPLOYMENT"
ENV_SERVER = "ESET_PROTECT_SERVER"
ENV_PORT = "ESET_PROTECT_PORT"
ENV_REGION = "ESET_PROTECT_REGION"
ENV_USERNAME = "ESET_PROTECT_USERNAME"
ENV_PASSWORD = "ESET_PROTECT_PASSWORD"  # noqa: S105 - the name of a variable, not a password
ENV_CA_PATH = "ESET_PROTECT_CA_PATH"


def eset_api_argument_spec() -> t.Dict[str, t.Dict[str, t.Any]]:
    return {
        "deployment": {"type": "str", "choices": list(DEPLOYMENTS), "default": "on_prem",
                       "fallback": (env_fallback, [ENV_DEPLOYMENT])},
        "server": {"type": "str", "aliases": ["hostname"], "fallback": (env_fallback, [ENV_SERVER])},
        "port": {"type": "int", "default": 9443, "fallback": (env_fallback, [ENV_PORT])},
        "region": {"type": "str", "choices": list(REGIONS), "fallback": (env_fallback, [ENV_REGION])},
        "username": {"type": "str", "required": True, "no_log": False, "fallback": (env_fallback, [ENV_USERNAME])},
        "password": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, [ENV_PASSWORD])},
        "domain_user": {"type": "bool", "default": False},
        "ca_path": {"type": "path", "fallback": (env_fallback, [ENV_CA_PATH])},
        "validate_certs": {"type": "bool", "default": True},
        "timeout": {"type": "float", "default": 30},
        "retries": {"type": "int", "default": 6},
        "api_urls": {"type": "dict"},
    }
