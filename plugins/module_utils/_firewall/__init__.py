# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The firewall capability (module epns_firewall): backend-neutral model (_model), the backend interface
# (_base), the nftables and iptables backends, rollback-unless-confirmed (_rollback), the refresh job
# (_refresh) and the run that ties them together (_engine). Read README.md in this directory first.
# Modules of this package import each other relatively only: the refresh job runs a copy of it.
