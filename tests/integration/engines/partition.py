"""The lab's partition proxies in the integration tests (a pytest plugin, like every module of
engines/).

partition_lab (function)
    Starts the partition proxies (kind `partition`) on the canonical pair of `pg_pair`: the
    standby then streams through them, and `.inventory` is the test lab's inventory plus the
    overlay that routes the control node and the witness through them
    (`lab.partition.inventory_overlay`). `.cut(between=(A, B))` / `.cut(isolate=SIDE)`,
    `.heal()`, `.status()`; `.pair` is the PgPair (its checks connect to the servers directly,
    not through the proxies). After the test it heals every link and stops the proxies, also
    on failure: the standbys are pointed straight at their primary again, and the next
    `pg_pair` resets the pair if the test left it otherwise.
"""

from __future__ import annotations

import shutil

import pytest
import yaml

from lab import partition as lab_partition


class PartitionLab:
    def __init__(self, env, pair) -> None:
        self.env = env
        self.lab = env.lab
        self.pair = pair
        self.inventory = env.workdir / "partition-inventory"
        self.inventory.mkdir(exist_ok=True)
        shutil.copy(env.inventory, self.inventory / "hosts.yml")
        # Sorts after hosts.yml: Ansible reads it last, its host variables win.
        (self.inventory / "partition.yml").write_text(
            yaml.safe_dump(lab_partition.inventory_overlay(self.lab), sort_keys=False))

    def cut(self, between=None, isolate=None) -> dict:
        return lab_partition.cut(self.lab, between=between, isolate=isolate)

    def heal(self) -> dict:
        states = lab_partition.heal(self.lab)
        lab_partition.wait_open(self.lab)
        return states

    def status(self) -> dict:
        return lab_partition.status(self.lab)


@pytest.fixture
def partition_lab(lab_env, pg_pair):
    lab_env.ensure_started([lab_partition.KIND])
    try:
        yield PartitionLab(lab_env, pg_pair)
    finally:
        try:
            lab_partition.heal(lab_env.lab)
        finally:
            lab_env.started.discard(lab_partition.KIND)
            lab_env.lab.down(kinds=[lab_partition.KIND], immediate=False)
