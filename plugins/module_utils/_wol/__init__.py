# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: Wake-on-LAN (magic packets, listeners, senders, destination rules, the server
# settings map). Standard library only; managed hosts run Python 3.8+. Import the submodules directly.
