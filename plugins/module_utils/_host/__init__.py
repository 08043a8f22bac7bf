# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# Host I/O for every capability (firewall, proxy, Wake-on-LAN): the command runner (_run) and the file reader and
# atomic writer (_files). Standard library only, managed hosts run Python 3.8+, and nothing here imports Ansible:
# the firewall's refresh job runs a copy of this package beside its copy of _firewall, with plain python3.
# Modules of this package import each other relatively only.
