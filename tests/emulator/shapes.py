"""Request shapes of the calls the emulator serves, written from ESET's OpenAPI specs (not copied from them).

Each message maps its JSON (lowerCamel) field names to a type: a scalar name, ("msg", Name), ("enum", names),
("list", type) or ("map", type). `ONEOF` lists fields of which at most one may be set. `ANY_TYPES` is the
registry a `protobufAny` `@type` is resolved against: a type not in it cannot be decoded by the server.
Only request-side shapes live here; responses are built by the handlers.
"""
from __future__ import annotations

from typing import Any, Dict, List

POLICY_DATA_TYPE = "type.googleapis.com/Era.Common.DataDefinition.Policy.PolicyData"
# "For ERA/ESMC/EP(C) legacy policy, use 0xFFFFFFFF value for feature_id" (policy-management spec).
LEGACY_FEATURE_ID = 0xFFFFFFFF

MESSAGES: Dict[str, Dict[str, Any]] = {
    # policy-management
    "CreatePolicyRequest": {"policy": ("msg", "Policy")},
    "Policy": {
        "uuid": "string", "displayName": "string", "description": "string", "builtIn": "bool",
        "features": ("list", ("msg", "FeaturePolicy")),
    },
    "FeaturePolicy": {
        "featureId": "int64", "configuration": "any", "flags": ("map", ("msg", "SettingFlags")),
    },
    "SettingFlags": {"applyForcefully": "bool", "readOnly": "bool"},
    "PolicyData": {"product": "string", "data": "string"},
    "AssignPolicyRequest": {"assignment": ("msg", "PolicyAssignment")},
    "PolicyAssignment": {
        "uuid": "string", "policyUuid": "string", "rank": "int64", "target": ("msg", "PolicyTarget"),
    },
    "PolicyTarget": {"deviceUuid": "string", "deviceGroupUuid": "string", "subscriptionUuid": "string"},
    "UpdateRankingBody": {"rank": "int64"},
    # On-Prem login (13.0 docs: grant_type 0; a public 13.1 client sends grantType "PASSWORD"; as protobuf
    # JSON both spell the same enum field, so both are accepted).
    "GetTokensRequest": {
        "username": "string", "password": "string", "grantType": ("enum", ["PASSWORD"]), "isDomainUser": "bool",
    },
    # On-Prem 13.1+ server configuration (seen only in public client code).
    "BatchGetValuesRequest": {"paths": ("list", "string")},
    # Shape of the hypothetical write call; no public write call exists (see config.py).
    "BatchSetValuesRequest": {"values": ("list", ("msg", "ConfigValue"))},
    "ConfigValue": {"path": "string", "value": "json"},
}

ONEOF: Dict[str, List[str]] = {"PolicyTarget": ["deviceUuid", "deviceGroupUuid", "subscriptionUuid"]}

# Fields the spec marks readOnly: accepted by the decoder, ignored by the server.
READ_ONLY: Dict[str, List[str]] = {"Policy": ["uuid", "builtIn"], "PolicyAssignment": ["uuid", "rank"]}

ANY_TYPES: Dict[str, str] = {POLICY_DATA_TYPE: "PolicyData"}
