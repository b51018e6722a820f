"""``python -m cli``: demo and helpers for the local stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli import demo, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="start the stack, upload a CSV and follow it end to end")
    run_demo.add_argument("--data", type=Path, help="CSV to upload (default: a generated sample)")
    run_demo.add_argument("--model", default="bank", help="model name, i.e. the folder under datasets/")
    show = commands.add_parser("status", help="each upload's state, and the models, from a running host")
    show.add_argument("--url", default=status.default_url(), help="the host (default: DEVHOST_URL or :7071)")
    show.add_argument("--key", help="function key (default: FUNCTIONS_KEY or the host's keys file)")
    show.add_argument("--json", action="store_true", help="print the raw JSON")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run(args.data, args.model)
    if args.command == "status":
        return status.show(args.url.rstrip("/"), args.key or status.host_key(status.default_state()), args.json)
    return 2
