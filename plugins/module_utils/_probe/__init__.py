# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The staged EPNS reachability probe (module epns_probe): options (_options), the run and its result
# (_engine), the stages (_tunnel: TCP and proxy CONNECT, _tls, _session: MQTT and hold), the naming of
# failures and the verdict (_classify), one attempt's record (_attempt), the probe's own DNS client (_dns),
# who vouches for a chain (_trust), and the wire formats it reads and writes (_mqtt, _x509).
# Standard library only (Python 3.8+, runs on managed hosts); siblings import each other relatively.
