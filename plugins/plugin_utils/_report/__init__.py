# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: not a public API, may change without notice.
#
# The fleet report (action epns_report), one way: probe results and extra sections -> records (_normalise) -> the
# report model (_model, schema_version 1) with its counts and summary lines (_summary) and its before/after
# comparison (_compare) -> files (_render). The words they share are in _states, the text rules (redaction, terminal
# safety, host order) in _text. Modules of this package import each other relatively only.
# Standard library only except _render (jinja2); no Ansible imports (module_utils/_epns is the collection's own,
# standard library only); no I/O except _render reading templates.
