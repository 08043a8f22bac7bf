# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The report's words: row and cell states, the tones a renderer colours, and their labels. The failure classes'
# wording has its one home in module_utils/_epns.py, shared with the probe.
from __future__ import annotations

# Row states: the probe verdicts, plus hosts that could not be probed at all.
REACHABLE = "reachable"
DEGRADED = "degraded"
UNREACHABLE = "unreachable"
NOT_PROBED = "not_probed"
ROW_STATES = (REACHABLE, DEGRADED, UNREACHABLE, NOT_PROBED)
VERDICTS = (REACHABLE, DEGRADED, UNREACHABLE)
# The role of the ESET PROTECT server paths (the probe's server_paths): their own columns, never in the verdict.
SERVER_ROLE = "server"

# Cell states.
CELL_OK = "ok"
CELL_PROVEN_BY_AUTH = "proven_by_auth"
CELL_FAILED = "failed"
CELL_NOT_TESTED = "not_tested"  # this host has no such path (e.g. no proxy configured there)
CELL_NOT_PROBED = "not_probed"  # the host has no probe result at all
CELL_STATES = (CELL_OK, CELL_PROVEN_BY_AUTH, CELL_FAILED, CELL_NOT_TESTED, CELL_NOT_PROBED)

# Cell tones (what a renderer colours): a working path of a degraded host is "fallback" (amber).
TONE_OK = "ok"
TONE_AUTH = "auth"
TONE_FALLBACK = "fallback"
TONE_FAILED = "failed"
TONE_NONE = "none"

STATE_LABELS = {
    REACHABLE: "reachable",
    DEGRADED: "degraded",
    UNREACHABLE: "unreachable",
    NOT_PROBED: "not probed",
    CELL_OK: "ok",
    CELL_PROVEN_BY_AUTH: "ok (proven by auth)",
    CELL_FAILED: "failed",
    CELL_NOT_TESTED: "not tested",
}
