# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The managed-host Python floor (docs/supported-versions.md). Each module calls require_supported_python() before
# it imports any other module_utils of the collection: those need Python 3.8, and on an older one they would fail
# with a SyntaxError or an ImportError that says nothing about the cause. This file itself must therefore parse and
# run on any Python ansible-core can still reach (2.7, 3.6): no annotations, no f-strings, no __future__ features.
import json
import sys

MINIMUM = (3, 8)

# What a RHEL 8 or SLES 15 user does: their system Python is 3.6, and both ship a newer one beside it.
REMEDY = (
    "On RHEL 8 (8.8 or later): dnf install python3.11 (on 8.4-8.7: dnf install python39, interpreter "
    "/usr/bin/python3.9) and set ansible_python_interpreter=/usr/bin/python3.11 for the host. "
    "On SLES 15 SP4 or later: enable the Python 3 module (SUSEConnect -p sle-module-python3/15.X/ARCH), "
    "zypper install python311 and set ansible_python_interpreter=/usr/bin/python3.11. "
    "See docs/supported-versions.md of the protectnet.epns collection."
)


def too_old_message(version_info, executable):
    # type: (tuple, str) -> str
    def dotted(parts):
        # type: (tuple) -> str
        return ".".join(str(part) for part in parts)
    return ("protectnet.epns modules need Python " + dotted(MINIMUM) + " or newer on the managed host; this host "
            "ran the module with Python " + dotted(tuple(version_info)[:3]) + " (" + (executable or "unknown path")
            + "). " + REMEDY)


def require_supported_python():
    # type: () -> None
    """On a Python older than MINIMUM, answer the way ansible-core's basic.py does (one JSON failure) and exit."""
    if tuple(sys.version_info) < MINIMUM:
        # No AnsibleModule yet (it needs the module's argument spec, whose imports are what fails): basic.py's way.
        failure = {"failed": True, "msg": too_old_message(sys.version_info, sys.executable)}
        print(json.dumps(failure))  # pylint: disable=ansible-bad-function
        sys.exit(1)  # pylint: disable=ansible-bad-function
