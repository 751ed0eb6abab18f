"""What the lab runs, in start order. Adding a server is one line here and one Component class."""

from __future__ import annotations

from lab.postgresql import PostgresNode


def build_components(lab):
    pg_east = PostgresNode(lab, "us-east")
    pg_west = PostgresNode(lab, "us-west", upstream=pg_east)
    return [pg_east, pg_west]
