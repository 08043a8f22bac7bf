# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The standalone probe runner (command epns-probe, installed by the module epns_monitor_runner): the schedule that
# picks what a run does (_schedule: tcp_tls, mqtt, hold or passive), the lock, state, skip counter and history
# (_store), the Prometheus text file (_metrics), the run and its command line (_runner), and what the module
# installs (_install). It runs the probe engine (_probe) itself, unchanged. Standard library only (Python 3.8+);
# siblings import each other relatively, so the copy on the host works under any package name.
