# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: the ESET PROTECT policy the agents' HTTP proxy lives in (policy data codec, the
# settings map, the replace-never-uncover apply). Not the squid/Apache proxies: those are _proxy.
# Import the submodules (_agent_proxy, _settings_map, _codec) directly; this file is kept empty on purpose.
