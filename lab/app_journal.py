"""Count the application's lost writes: every acknowledged write of every region's journal must
be in PostgreSQL and in Redis now.

    python -m lab.app_journal          # JSON report for the lab of FAILSAFE_LAB_* (exit 1: losses)

The writers (lab/app_service.py) journal one JSON line per acknowledged write: `{"store", "id",
"time", ...}`. `read_journals()` gathers the ids per store; `missing_ids()` asks a store which
of them it lacks; `check_lab()` does both against the lab's current PostgreSQL primary (the
server that accepts writes, verified against the lab's CA) and current Redis master.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

CHUNK = 5000


@dataclass
class StoreLosses:
    store: str
    acknowledged: int
    lost: int
    missing: list = field(default_factory=list)
    checked_on: str | None = None

    def as_dict(self) -> dict:
        return {"store": self.store, "acknowledged_writes": self.acknowledged,
                "acknowledged_writes_lost": self.lost, "missing_sample": self.missing[:20],
                "checked_on": self.checked_on}


def parse_journal(lines: Iterable[str]) -> dict[str, list[str]]:
    """{store: [ids in order]} from journal lines; a torn last line (writer killed) is skipped."""
    found: dict[str, list[str]] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found.setdefault(record["store"], []).append(str(record["id"]))
    return found


def read_journals(paths: Iterable[Path]) -> dict[str, list[str]]:
    """Every journal's acknowledged ids per store (a journal not written yet counts as empty)."""
    merged: dict[str, list[str]] = {}
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        for store, ids in parse_journal(text.splitlines()).items():
            merged.setdefault(store, []).extend(ids)
    return merged


def missing_ids(ids: list[str], present: Callable[[list[str]], Iterable[str]]) -> list[str]:
    """The ids that `present(chunk)` (the ids of the chunk the store has) does not return."""
    missing = []
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        have = set(present(chunk))
        missing.extend(i for i in chunk if i not in have)
    return missing


def losses(journal: dict[str, list[str]],
           checkers: dict[str, tuple[str, Callable[[list[str]], Iterable[str]]]]) -> dict:
    """{store: StoreLosses} for every store of `checkers` ({store: (where, present)})."""
    result = {}
    for store, (where, present) in checkers.items():
        ids = journal.get(store, [])
        gone = missing_ids(ids, present)
        result[store] = StoreLosses(store, len(ids), len(gone), gone, where)
    return result


# Against the lab -----------------------------------------------------------------------------

def _postgres_checker(lab):
    import psycopg

    from lab import postgresql
    from lab.app_service import TABLE

    nodes = lab.of_kind(postgresql.PostgresNode.kind)
    conninfo = (f"host={','.join(n.host for n in nodes)} "
                f"port={','.join(str(n.port) for n in nodes)} user={postgresql.ADMIN_USER} "
                f"password={postgresql.ADMIN_PASSWORD} dbname=postgres connect_timeout=3 "
                f"target_session_attrs=read-write sslmode=verify-full "
                f"sslrootcert={lab.ca.cert_path}")
    conn = psycopg.connect(conninfo, autocommit=True)
    where = f"{conn.info.host}:{conn.info.port}"

    def present(chunk):
        exists = conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0]
        if exists is None:
            return []
        return [row[0] for row in conn.execute(
            f"SELECT id FROM {TABLE} WHERE id = ANY(%s)", (chunk,))]

    return conn, where, present


def _redis_checker(lab):
    from lab import redis as lab_redis
    from lab.app_service import REDIS_KEY

    masters = []
    for node in lab.of_kind(lab_redis.RedisNode.kind):
        conn = lab_redis.client(node.host, node.port)
        try:
            if conn.execute_command("ROLE")[0] == "master":
                masters.append((node, conn))
                continue
        except Exception:  # a node that is down is not the master
            pass
        conn.close()
    if len(masters) != 1:
        raise RuntimeError(f"expected one Redis master, found {[n.name for n, _c in masters]}")
    node, conn = masters[0]

    def present(chunk):
        return [i for i, ok in zip(chunk, conn.smismember(REDIS_KEY, chunk)) if ok]

    return conn, f"{node.host}:{node.port}", present


def journal_paths(lab) -> list[Path]:
    from lab.app import AppWriter

    return [comp.journal for comp in lab.of_kind(AppWriter.kind)]


def check_lab(lab) -> dict:
    """{store: StoreLosses} of every region's journal against the lab's stores now."""
    journal = read_journals(journal_paths(lab))
    pg_conn, pg_where, pg_present = _postgres_checker(lab)
    redis_conn, redis_where, redis_present = _redis_checker(lab)
    try:
        return losses(journal, {"postgresql": (pg_where, pg_present),
                                "redis": (redis_where, redis_present)})
    finally:
        pg_conn.close()
        redis_conn.close()


def main() -> int:
    from lab.topology import make_lab

    report = check_lab(make_lab())
    print(json.dumps({store: item.as_dict() for store, item in report.items()}, indent=2))
    return 1 if any(item.lost for item in report.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
