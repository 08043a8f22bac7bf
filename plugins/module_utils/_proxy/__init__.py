# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The proxy capability (module proxy_connect_ports): the validated request (_model), configuration files as text
# (_conf), one backend per proxy (_squid, _apache), what is known about ESET Bridge (_bridge), and the run that
# ties them together (_engine). Commands and file reads and writes go through ../_host. Standard library only;
# managed hosts run Python 3.8+. Modules of this package import each other relatively only.
