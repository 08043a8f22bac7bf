# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip.py that ansible-test downloads to bootstrap pip into its sanity virtualenvs.

ansible-test fetches get-pip.py from ci-files.testing.ansible.com, which this build does not reach. It runs the file
cached as ~/.ansible/test/cache/get_pip_<version>.py instead when one is there, with get-pip's command line (pip
install options and packages). `make sanity` puts this file there: it installs the pip bundled with Python
(ensurepip, offline), then lets that pip install the pinned packages from the configured package index.

`python get_pip_offline.py --ansible-test-pip-version` (in the project virtualenv) prints the pip version the
installed ansible-test bootstraps, which names the cache file.
"""
from __future__ import annotations

import subprocess
import sys


def ansible_test_pip_version() -> str:
    # pylint: disable-next=import-outside-toplevel
    from ansible_test._internal.host_configs import NativePythonConfig

    # pylint: disable-next=import-outside-toplevel
    from ansible_test._internal.python_requirements import get_venv_packages

    version = "{}.{}".format(*sys.version_info[:2])
    return get_venv_packages(NativePythonConfig(version=version, path=sys.executable))["pip"]


def main() -> int:
    if sys.argv[1:] == ["--ansible-test-pip-version"]:
        sys.stdout.write(ansible_test_pip_version() + "\n")
        return 0
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    # In a child process: ensurepip.bootstrap() would leave PIP_CONFIG_FILE=/dev/null in this process's
    # environment, hiding the machine's pip configuration (index, CA bundle) from the install below.
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    return subprocess.call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    sys.exit(main())
