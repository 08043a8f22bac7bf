# Copyright: protectnet.epns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
#
# PRIVATE to the collection: the result shape of every module that changes something, written once.
# ansible-core merges a fragment into DOCUMENTATION only (RETURN fragments arrive with ansible-core 2.20, and older
# versions fail on them), so the shared keys are notes here and in docs/results.md; each module's RETURN documents
# what its own before and after hold.
from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
notes:
  - "Result shape (the same in every module of protectnet.epns that changes something, see docs/results.md) -
    C(changed); C(before) and C(after), this module's own state before and after the run (after - as it would be,
    in check mode; the content is the module's, see its return values); C(commands), the commands run on the
    managed host (or that would be, in check mode), each C({argv: [...], stdin: str or null}), V([]) for a module
    that only talks to an API; C(files), the files created, updated or removed (or that would be), each
    C({path, action}) with C(action) one of V(created), V(updated), V(removed); C(diff) with C(--diff) only; and
    C(warnings) when there are any."
"""
