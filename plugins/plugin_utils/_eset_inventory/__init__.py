# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# ESET PROTECT as the inventory (inventory plugin eset_protect), controller side and pure: the plugin's options
# (_options) and the devices and groups the API listed become hosts, host variables, groups and the eset_inventory
# summary (_model), from one device's fields (_device) and its clones (_clones). No HTTP here: the plugin lists
# through module_utils/_eset_api and hands the lists over.
