"""python -m lab up|down|status [--json]: start, stop and show the local lab."""

from __future__ import annotations

import argparse
import json
import sys

from lab.core import Lab, LabError


def print_table(rows: list[dict]) -> None:
    print(f"{'region':<9} {'component':<20} {'address':<17} {'state':<9} {'role':<8} detail")
    for row in rows:
        detail = ""
        if row.get("role") == "standby":
            detail = f"upstream {row.get('upstream')} ({row.get('receiver')}), replay lag {row.get('lag_bytes')} B"
        elif row.get("role") == "primary" and row.get("standbys") is not None:
            detail = "standbys: " + (", ".join(f"{k} lag {v} B" for k, v in row["standbys"].items()) or "none")
        print(f"{row['region']:<9} {row['component']:<20} {row['host'] + ':' + str(row['port']):<17} "
              f"{row['state']:<9} {str(row.get('role') or '-'):<8} {detail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start every component (idempotent)")
    down = sub.add_parser("down", help="stop every component and remove the lab's data")
    down.add_argument("--keep-data", action="store_true", help="stop, but keep data directories")
    status = sub.add_parser("status", help="show each component, its role, address and lag")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("inventory", help="print the Ansible inventory of this lab (YAML)")
    args = parser.parse_args(argv)

    lab = Lab()
    if args.command == "inventory":
        from lab.inventory import dump

        print(dump(lab.config), end="")
        return 0
    try:
        if args.command == "up":
            lab.up()
            print_table(lab.status())
        elif args.command == "down":
            lab.down(keep_data=args.keep_data)
            print("lab stopped" + (" (data kept)" if args.keep_data else ""))
        else:
            rows = lab.status()
            if args.json:
                print(json.dumps(rows, indent=2))
            else:
                print_table(rows)
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
