# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared option docs of the backup_* and restore_* modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The S3 store (the catalog's source of truth).
    DOCUMENTATION = r'''
options:
  store:
    description:
      - The S3 bucket that holds the backups and their catalog, as the
        C(failsafe.datastores.s3_store) filter builds it from the C(failsafe_s3_*) inventory
        variables.
    type: dict
    required: true
    suboptions:
      endpoint_url:
        description: URL of an S3-compatible service (MinIO, SeaweedFS, ...); empty for AWS S3.
        type: str
      region:
        description: Region name given to the S3 client.
        type: str
        default: us-east-1
      bucket:
        description: The bucket. It must exist; it is never created.
        type: str
        required: true
      prefix:
        description: Key prefix under which the catalog lives (V(prod) gives C(prod/postgresql/YYYY/MM/DD/...)).
        type: str
        default: ""
      access_key:
        description: Access key id. Empty uses the environment or instance profile of the host that runs the module.
        type: str
      secret_key:
        description: Secret access key of O(store.access_key). Never returned or logged.
        type: str
      ca_cert:
        description: CA bundle that signed the endpoint's TLS certificate.
        type: path
      connect_timeout:
        description: Seconds to wait for a connection to S3.
        type: int
        default: 5
      read_timeout:
        description: Seconds to wait for an S3 answer.
        type: int
        default: 60
      sign_payload:
        description:
          - Sign the body of every upload (SigV4 payload hash), so that an S3 server that checks
            it refuses a part damaged on the way. That hashes every byte a second time in the
            module.
          - Off by default. The module's own SHA-256 of the whole object is stored in the
            catalog and checked by every restore and by C(backup_verify); over HTTPS, TLS protects
            the transfer. SeaweedFS does not check the payload hash at all.
        type: bool
        default: false
requirements:
  - boto3 >= 1.34
'''

    # A PostgreSQL server and database as a dict (source of a backup, target of a restore, the
    # backup_history database).
    POSTGRESQL = r'''
options:
  history:
    description:
      - A PostgreSQL database that keeps a C(backup_history) table (runbook 002), created if
        missing. Every backup or restore outcome is recorded there, failures included. S3 stays
        the source of truth; when this database cannot be reached the task still succeeds and
        says so in RV(history).
    type: dict
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as; it needs C(CREATE) on the database the first time.
        type: str
        default: postgres
      password:
        description: Password of O(history.user). Never returned or logged.
        type: str
      db:
        description: Database that holds the table.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(history.ssl_mode=verify-ca) and O(history.ssl_mode=verify-full).
        type: path
      log_file:
        description: The server's log file (C(failsafe_pg_log_file)); not used here, accepted so that the C(pg_conn) dict passes unchanged.
        type: path
  history_table:
    description: Name of the history table (optionally schema-qualified).
    type: str
    default: backup_history
'''
