# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""lsn_to_int: PostgreSQL WAL positions as integers, to compare and subtract them in playbooks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import lsn_to_int as _lsn


def lsn_to_int(lsn):
    if lsn is None or lsn == "":
        return 0
    try:
        return _lsn(lsn)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"lsn_to_int": lsn_to_int}
