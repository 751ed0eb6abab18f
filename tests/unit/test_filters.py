"""The collection's filters: pg_conn, s3_store and lsn_to_int."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.failsafe.datastores.plugins.filter.lsn import lsn_to_int
from ansible_collections.failsafe.datastores.plugins.filter.pg_conn import pg_conn
from ansible_collections.failsafe.datastores.plugins.filter.s3_store import s3_store

HOST_VARS = {
    "inventory_hostname": "pg-us-east",
    "failsafe_pg_host": "127.0.1.1",
    "failsafe_pg_port": 15432,
    "failsafe_pg_user": "postgres",
    "failsafe_pg_password": "secret",
    "failsafe_pg_db": "",
    "failsafe_region": "us-east",
}


def test_pg_conn_maps_inventory_variables_and_drops_empty_ones():
    assert pg_conn(HOST_VARS) == {"host": "127.0.1.1", "port": 15432, "user": "postgres",
                                  "password": "secret"}


def test_pg_conn_builds_exactly_the_modules_connection_shape():
    from ansible_collections.failsafe.datastores.plugins.filter.pg_conn import _FIELDS
    from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
        PEER_SPEC,
    )

    every = dict(("failsafe_pg_%s" % key, "x") for key in PEER_SPEC)
    assert sorted(pg_conn(every)) == sorted(PEER_SPEC)
    assert sorted(key for dummy, key in _FIELDS) == sorted(PEER_SPEC)


def test_pg_conn_adds_the_name_on_request():
    assert pg_conn(HOST_VARS, with_name=True)["name"] == "pg-us-east"


def test_pg_conn_without_host_says_which_variable_is_missing():
    with pytest.raises(AnsibleFilterError, match="pg-x has no failsafe_pg_host"):
        pg_conn({"inventory_hostname": "pg-x"})


@pytest.mark.parametrize("value", [["a"], "text", 3])
def test_pg_conn_rejects_what_is_not_host_variables(value):
    with pytest.raises(AnsibleFilterError, match="expects a host's variables"):
        pg_conn(value)


def test_s3_store_covers_every_key_of_the_store_option():
    from ansible_collections.failsafe.datastores.plugins.filter.s3_store import _FIELDS
    from ansible_collections.failsafe.datastores.plugins.module_utils._s3 import STORE_SPEC

    assert sorted(key for dummy, key in _FIELDS) == sorted(
        key for key in STORE_SPEC if key not in ("connect_timeout", "read_timeout"))
    store = s3_store({"failsafe_s3_bucket": "backups", "failsafe_s3_sign_payload": False,
                      "failsafe_s3_prefix": ""})
    assert store == {"bucket": "backups", "sign_payload": False}


def test_s3_store_without_a_bucket_names_the_variable():
    with pytest.raises(AnsibleFilterError, match="no failsafe_s3_bucket for db1"):
        s3_store({"inventory_hostname": "db1"})


@pytest.mark.parametrize("lsn, expected", [("0/0", 0), ("1/0", 1 << 32), ("16/B374D848", 0x16B374D848),
                                           (None, 0), ("", 0)])
def test_lsn_to_int(lsn, expected):
    assert lsn_to_int(lsn) == expected


def test_lsn_to_int_rejects_garbage_with_a_filter_error():
    with pytest.raises(AnsibleFilterError, match="not a PostgreSQL LSN"):
        lsn_to_int("16-B3")
