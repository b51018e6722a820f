"""``python -m cli``: demo and helpers for the local stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli import demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="start the stack, upload a CSV and follow it end to end")
    run_demo.add_argument("--data", type=Path, help="CSV to upload (default: a generated sample)")
    run_demo.add_argument("--model", default="bank", help="model name, i.e. the folder under datasets/")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo.run(args.data, args.model)
    return 2
