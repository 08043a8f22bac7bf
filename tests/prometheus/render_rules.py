"""Render roles/epns_monitor/files/epns-alerts.yml: the alerting rules on the runner's metrics, each with a summary and
the hint the probe gives for the failure class (plugins/module_utils/_epns.py FAILURE_CLASSES), so the rules never
drift from the probe's words. tests/unit/test_prometheus_rules.py checks the committed file is this output.

    .venv/bin/python tests/prometheus/render_rules.py            # rewrite the rules file
    .venv/bin/python tests/prometheus/render_rules.py --for 2s   # print a copy with short `for:` (lab tests)
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "roles" / "epns_monitor" / "files" / "epns-alerts.yml"
sys.path.insert(0, str(ROOT / ".build" / "collections"))

from ansible_collections.protectnet.epns.plugins.module_utils._epns import (  # noqa: E402
    FAILURE_CLASSES,
    IDLE_DROPPED,
    TLS_INTERCEPTED,
)

PATH = "instance, job, port, via, proxy"
WHERE = '{{ $labels.instance }} via {{ $labels.via }}{{ if $labels.proxy }} {{ $labels.proxy }}{{ end }}'


def class_hint() -> str:
    """One Go template that picks the probe's hint by the alert's `class` label."""
    parts = []
    for index, (name, failure) in enumerate(sorted(FAILURE_CLASSES.items())):
        keyword = "if" if index == 0 else "else if"
        parts.append(f'{{{{ {keyword} eq $labels.class "{name}" }}}}{failure.hint}')
    parts.append("{{ else }}Run epns-probe --once on the host for the probe's message.{{ end }}")
    return "".join(parts)


def quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


# (name, expr, for, severity, summary, hint): hint "*class" = the hint of the failing class (YAML alias)
ALERTS: t.List[t.Tuple[str, str, str, str, str, str]] = [
    ("EPNSUnreachable",
     '(max by (instance, job) (epns_path_up) == 0) * on (instance, job) group_left (class, stage)'
     ' topk by (instance, job) (1, epns_path_failure{port="8883"})'
     ' or on (instance, job) (max by (instance, job) (epns_path_up) == 0)', "30m", "critical",
     "{{ $labels.instance }}: no path to EPNS works, on 8883 or on the 443 fallback"
     " ({{ $labels.class }} on 8883)", "*class"),
    ("EPNSPrimaryPortDown",
     f'(epns_path_up{{port="8883"}} == 0) * on ({PATH}) group_left (class, stage) epns_path_failure'
     f' or on ({PATH}) (epns_path_up{{port="8883"}} == 0)', "30m", "warning",
     f"{WHERE}: EPNS port 8883 {{{{ if $labels.class }}}}fails at {{{{ $labels.stage }}}} ({{{{ $labels.class }}}})"
     "{{ else }}is down{{ end }}", "*class"),
    ("EPNSOnlyFallback",
     '(epns_path_up{port="8883"} == 0) and on (instance, job, via, proxy) (epns_path_up{port="443"} == 1)',
     "30m", "warning",
     f"{WHERE}: EPNS works only on the 443 fallback, 8883 is down: degraded",
     "The agent stays reachable through 443, but ESET names 8883 the primary port: allow outbound TCP 8883 to EPNS "
     "(EPNSPrimaryPortDown carries the failure class and its hint)."),
    ("EPNSIdleCut",
     'epns_path_idle_cut == 1', "0m", "warning",
     f"{WHERE}: an idle EPNS connection on port {{{{ $labels.port }}}} was cut during the hold",
     FAILURE_CLASSES[IDLE_DROPPED].hint),
    ("EPNSInterceptionSuspected",
     'epns_tls_interception_suspected == 1', "0m", "critical",
     f"{WHERE}: the TLS certificate on port {{{{ $labels.port }}}} looks like an interceptor's, not ESET's",
     FAILURE_CLASSES[TLS_INTERCEPTED].hint),
    ("EPNSTLSIssuerChanged",
     f'count by ({PATH}) (max_over_time(epns_tls_issuer_info[1d])) > 1', "0m", "warning",
     f"{WHERE}: the TLS issuer seen on port {{{{ $labels.port }}}} changed within a day",
     "An issuer change without an ESET announcement often means a TLS-inspecting box started to replace the "
     "certificate; compare issuer_sha256 in epns_tls_issuer_info with the probe's certificate details."),
    ("EPNSProbeStale",
     'time() - epns_probe_last_run_timestamp_seconds > 7200', "15m", "warning",
     "{{ $labels.instance }}: the EPNS monitor has not run for {{ $value | humanizeDuration }}",
     "Check the runner's timer or cron entry and its lock on the host (systemctl status epns-monitor.timer, or "
     "the cron log); epns-probe --once runs it by hand."),
    ("EPNSProbeRunsSkipped",
     'increase(epns_probe_runs_skipped_total[6h]) > 2', "0m", "info",
     "{{ $labels.instance }}: EPNS monitor runs were skipped because the previous run still held the lock",
     "A run (usually a hold) lasts longer than the interval: lengthen interval_minutes or shorten hold_seconds."),
    ("EPNSAgentNotConnected",
     'max by (instance, job) (epns_agent_connection_up) == 0', "1h", "warning",
     "{{ $labels.instance }}: the ESET Management Agent itself holds no connection to EPNS",
     "The probe's paths say whether the network allows EPNS; if they work, check the agent (its proxy policy, "
     "its service, its logs)."),
]


def render(for_override: t.Optional[str] = None) -> str:
    lines = ["---", "# Generated by tests/prometheus/render_rules.py from the runner's metrics (docs/monitoring.md)",
             "# and the probe's hints (plugins/module_utils/_epns.py); edit the generator, not this file.",
             "groups:", "  - name: epns", "    rules:"]
    anchored = False
    for name, expr, duration, severity, summary, hint in ALERTS:
        if hint == "*class":
            hint_text = "*class_hint" if anchored else f"&class_hint {quoted(class_hint())}"
            anchored = True
        else:
            hint_text = quoted(hint)
        lines += [f"      - alert: {name}", f"        expr: {quoted(expr)}",
                  f"        for: {for_override or duration}", "        labels:", f"          severity: {severity}",
                  "        annotations:", f"          summary: {quoted(summary)}", f"          hint: {hint_text}"]
    return "\n".join(lines) + "\n"


def metric_names(text: str) -> t.Set[str]:
    return set(re.findall(r"\bepns_[a-z_]+", text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--for", dest="for_override", help="print a copy with this `for:` on every rule")
    args = parser.parse_args()
    if args.for_override:
        sys.stdout.write(render(args.for_override))
    else:
        RULES.write_text(render())


if __name__ == "__main__":
    main()
