"""python -m lab up|down|status|inventory|packages|partition: start, stop and show the local lab.

Imports only the standard library at the top: lab/install-deps.sh runs `packages` with the
system's python3, before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import json
import sys

from lab.core import LabError
from lab.topology import make_lab


def print_table(rows: list[dict]) -> None:
    print(f"{'site':<9} {'component':<24} {'address':<22} {'state':<9} {'role':<8} detail")
    for row in rows:
        address = f"{row['host']}:{','.join(str(p) for p in row['ports'].values())}"
        print(f"{row['site']:<9} {row['component']:<24} {address:<22} {row['state']:<9} "
              f"{str(row.get('role') or '-'):<8} {row.get('detail') or ''}".rstrip())


def kinds_option(text: str) -> list[str]:
    return [kind for kind in text.split(",") if kind]


def sides_option(text: str) -> tuple[str, str]:
    parts = [part for part in text.split(",") if part]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"two sides, as A,B (not {text!r})")
    return parts[0], parts[1]


def partition_command(lab, args) -> None:
    from lab import partition

    if args.action == "inventory":
        import yaml

        print(yaml.safe_dump(partition.inventory_overlay(lab), sort_keys=False), end="")
        return
    if args.action == "cut":
        states = partition.cut(lab, args.between, args.isolate)
    elif args.action == "heal":
        states = partition.heal(lab, args.between, args.isolate)
    else:
        states = partition.status(lab)
    if args.json:
        print(json.dumps(states, indent=2))
    else:
        partition.print_links(states)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the lab's components (idempotent)")
    up.add_argument("--only", type=kinds_option, metavar="KIND[,KIND]",
                    help="only these kinds, and the kinds they need (default: every kind)")
    down = sub.add_parser("down", help="stop every component that runs and remove the lab's data")
    down.add_argument("--keep-data", action="store_true", help="stop, but keep data directories")
    status = sub.add_parser("status", help="show each component, its address, state and role")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("inventory", help="print the Ansible inventory of this lab (YAML)")
    packages = sub.add_parser("packages", help="print the missing Debian packages, on one line")
    packages.add_argument("--only", type=kinds_option, metavar="KIND[,KIND]",
                          help="for these kinds and the kinds they need (default: every kind)")
    part = sub.add_parser("partition", help="cut, heal or show the links of the partition "
                                            "proxies (up --only partition starts them)")
    part.add_argument("action", choices=("status", "cut", "heal", "inventory"))
    part.add_argument("--between", type=sides_option, metavar="A,B",
                      help="the two sides (control, witness or a region) whose links to cut "
                           "or heal")
    part.add_argument("--isolate", metavar="SIDE", help="every link of this side")
    part.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)

    try:
        lab = make_lab()
        if args.command == "inventory":
            from lab.inventory import dump

            print(dump(lab), end="")
        elif args.command == "packages":
            print(" ".join(lab.missing_packages(args.only)))
        elif args.command == "partition":
            partition_command(lab, args)
        elif args.command == "up":
            lab.up(args.only)
            print_table(lab.status())
        elif args.command == "down":
            lab.down(keep_data=args.keep_data)
            print("lab stopped" + (" (data kept)" if args.keep_data else ""))
        elif args.json:
            print(json.dumps(lab.status(), indent=2))
        else:
            print_table(lab.status())
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print("\n".join(["lab: interrupted (Ctrl-C)"] + getattr(exc, "__notes__", [])),
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
