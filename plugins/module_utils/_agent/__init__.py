# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The ESET Management Agent's own connection, observed passively: which established TCP connections the agent
# process (ERAAgent) holds right now, to EPNS, to its proxy or elsewhere, read from /proc (the socket tables and the
# process's file descriptors). Nothing is sent anywhere. Standard library only; managed hosts run Python 3.8+.
# The module epns_agent_connection and the monitor's runner (its passive check) call observe().
from __future__ import annotations

from ._observe import AgentConfigError, Observation, observe, parse_proxy

__all__ = ["AgentConfigError", "Observation", "observe", "parse_proxy"]
