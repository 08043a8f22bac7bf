# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Which hosts of a fleet probe EPNS actively (role epns_monitor) and how often, so that thousands of hosts never look
# like an attack on ESET's production service: one or two sentinels per egress (public address, proxy in effect),
# everyone else passive, and an interval long enough that the fleet stays under a connection-rate cap.
# Pure functions of inventory facts; standard library only; the filter plugins/filter/monitor_plan.py exposes them.
from __future__ import annotations

from ._plan import HostPlan, MonitorPlan, PlanError, RateSettings, egress_key, plan_monitor, required_interval

__all__ = ["HostPlan", "MonitorPlan", "PlanError", "RateSettings", "egress_key", "plan_monitor", "required_interval"]
