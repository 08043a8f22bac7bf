# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: the ESET PROTECT REST API client (On-Prem 13+ and ESET Connect cloud).
# Import the submodules (_client, _argspec, ...) directly; this file is kept empty on purpose.
