#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_set
short_description: Write the manifest of a backup set (one recovery point across engines)
version_added: 0.3.0
description:
  - "Writes C(<prefix>/sets/YYYY/MM/DD/<set id>.json) with the set's members as the per-engine
    backup modules returned them (their C(member) result): backup ids, keys, checksums, sizes
    and each engine's position (PostgreSQL LSN, Redis replication offset), plus the row or key
    counts recorded at backup time."
  - The set is C(success) only when every member is; a member that failed is listed with its
    status and message, so the set says what it does not cover.
  - Writing the same content again changes nothing.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the manifest it would write.
  diff_mode:
    support: full
  idempotent:
    description: The same manifest is not written twice.
    support: full
options:
  set_id:
    description: The set's id (C(set_YYYYMMDD_HHMMSS)); its time places the manifest.
    type: str
    required: true
  members:
    description: The members, as the backup modules return them in C(member).
    type: list
    elements: dict
    required: true
'''

EXAMPLES = r'''
- name: Close the backup set
  failsafe.datastores.backup_set:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
    set_id: "{{ set_id }}"
    members: "{{ [pg_backup.member, redis_backup.member] }}"
'''

RETURN = r'''
manifest:
  description: The manifest written (or that would be).
  returned: always
  type: dict
manifest_key:
  description: Its key in the bucket.
  returned: always
  type: str
diff:
  description: The manifest before and after.
  returned: when diff mode is on
  type: dict
'''

import datetime
import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3


def set_time(set_name):
    stamp = set_name.split("_")[1:3]
    return datetime.datetime.strptime("_".join(stamp), "%Y%m%d_%H%M%S").replace(
        tzinfo=datetime.timezone.utc)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            set_id=dict(type="str", required=True),
            members=dict(type="list", elements="dict", required=True),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    try:
        when = set_time(params["set_id"])
    except (ValueError, IndexError):
        module.fail_json(msg="set_id %s is not set_YYYYMMDD_HHMMSS[_n]" % params["set_id"])
    members = [m for m in params["members"] if m]
    manifest = catalog.manifest(params["set_id"], when, members)
    key = catalog.manifest_key(store.get("prefix"), params["set_id"], when)
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        before = None
        if _s3.head(store, s3, key) is not None:
            before = json.loads(_s3.get_bytes(store, s3, key).decode("utf-8"))
        changed = before != manifest
        if changed and not module.check_mode:
            _s3.put_bytes(store, s3, key, catalog.manifest_json(manifest))
    except _s3.S3Error as exc:
        module.fail_json(msg=str(exc))
    result = dict(changed=changed, manifest=manifest, manifest_key=key)
    if module._diff:
        result["diff"] = dict(before=before or {}, after=manifest)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
