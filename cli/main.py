"""``python -m cli``: demo and helpers for the local stack."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli import demo, plan, runs, status, telemetry, uploads
from cli.host_api import RunningHost, host_key


def positive(text: str) -> int:
    """A whole number of at least 1 (argparse names the option when this raises)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


TASKS = ["classification", "regression", "forecasting"]


def forecasting_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-column", help="forecast: the column of dates (blob metadata 'time_column')")
    parser.add_argument("--horizon", type=positive, help="forecast: periods ahead (metadata 'horizon'; default 1)")
    parser.add_argument("--series", default="", help="forecast: comma-separated columns naming each series "
                                                      "(metadata 'series'; default: one series)")


def forecast_metadata(args: argparse.Namespace) -> dict[str, str]:
    """The forecasting settings as blob metadata (names percent-encoded as the target's are)."""
    series = ",".join(uploads.ascii_safe(c.strip()) for c in args.series.split(",") if c.strip())
    given = {"time_column": uploads.ascii_safe(args.time_column) if args.time_column else "",
             "horizon": str(args.horizon) if args.horizon else "", "series": series}
    return {key: value for key, value in given.items() if value}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="start the stack, upload a CSV and follow it end to end")
    run_demo.add_argument("--data", type=Path, help="CSV to upload (default: a generated sample)")
    run_demo.add_argument("--model", default="bank", help="model name, i.e. the folder under datasets/")
    run_demo.add_argument("--target", default="y", help="the column to predict (blob metadata 'target')")
    run_demo.add_argument("--task", choices=TASKS,
                          help="blob metadata 'task' (default: decided by the target's values)")
    forecasting_options(run_demo)
    drop = commands.add_parser("upload", help="drop a CSV into the running stack's storage and follow it")
    drop.add_argument("data", type=Path, help="the CSV file")
    drop.add_argument("--model", required=True, help="model name, i.e. the folder under datasets/")
    drop.add_argument("--target", default="y", help="the column to predict (blob metadata 'target')")
    drop.add_argument("--task", choices=TASKS, help="default: decided by the target (a --time-column: forecasting)")
    forecasting_options(drop)
    drop.add_argument("--metric", help="primary metric, e.g. AUC_weighted")
    drop.add_argument("--exclude", default="", help="comma-separated columns to leave out")
    drop.add_argument("--no-follow", action="store_true", help="print the upload id and return")
    show = commands.add_parser("status", help="each upload's state, and the models, from a running host")
    show.add_argument("--url", default=status.default_url(), help="the host (default: DEVHOST_URL or :7071)")
    show.add_argument("--key", help="function key (default: FUNCTIONS_KEY or the host's keys file)")
    show.add_argument("--json", action="store_true", help="print the raw JSON")
    run = commands.add_parser("run", help="start the published training pipeline and follow it")
    run.add_argument("--model", required=True, help="the dataset / model name")
    run.add_argument("--pipeline", default="automl-training")
    run.add_argument("--dataset-version", type=int, help="default: the latest")
    run.add_argument("--metric", help="primary metric, e.g. AUC_weighted")
    run.add_argument("--budget", type=positive, help="AutoML time budget in seconds")
    run.add_argument("--exclude", default="", help="comma-separated columns to leave out")
    run.add_argument("--no-follow", action="store_true", help="print the run id and return")
    follow = commands.add_parser("follow", help="follow a run until it ends")
    follow.add_argument("run_id")
    for sub_parser in (run, follow, drop):
        sub_parser.add_argument("--url", default=status.default_url())
        sub_parser.add_argument("--key", help="function key (default: FUNCTIONS_KEY or the host's keys file)")
    watch = commands.add_parser("telemetry", help="read the local telemetry store",
                                description=telemetry.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    watch.add_argument("view", choices=["tail", "requests", "events", "exceptions", "trace"])
    watch.add_argument("operation_id", nargs="?")
    watch.add_argument("--limit", type=positive, default=30, help="the most recent entries to show (default 30)")
    watch.add_argument("--follow", action="store_true")
    watch.add_argument("--store", type=Path, default=status.default_state() / "telemetry.db")
    dry = commands.add_parser("plan", help="print what the Azure backend would create for an upload (no Azure)")
    dry.add_argument("--data", type=Path, required=True, help="the CSV that would be uploaded")
    dry.add_argument("--model", default="bank", help="model name, i.e. the folder under datasets/")
    dry.add_argument("--metadata", action="append", default=[], help="blob metadata key=value (repeatable)")
    dry.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "plan":
        return plan.run(args.data, args.model, args.metadata, args.json)
    if args.command == "telemetry":
        return telemetry.run(args.store, args.view, args.operation_id, args.limit, args.follow)
    if args.command == "demo":
        return demo.run(args.data, args.model, args.target, args.task, forecast_metadata(args))
    host = RunningHost(args.url.rstrip("/"), *host_key(args.key, status.default_state()))
    if args.command == "follow":
        return runs.follow(host, args.run_id)
    if args.command == "run":
        body = {"model": args.model, "dataset_version": args.dataset_version, "metric": args.metric,
                "time_budget_s": args.budget, "exclude": [c for c in args.exclude.split(",") if c]}
        run_id = runs.start(host, args.pipeline, {k: v for k, v in body.items() if v not in (None, [])})
        return 0 if args.no_follow else runs.follow(host, run_id)
    if args.command == "upload":
        metadata = {"target": uploads.ascii_safe(args.target), "task": args.task, "metric": args.metric,
                    "exclude": ",".join(uploads.ascii_safe(c.strip()) for c in args.exclude.split(",") if c.strip()),
                    **forecast_metadata(args)}
        return uploads.run(args.data, args.model, {k: v for k, v in metadata.items() if v}, host,
                           uploads.local_storage(status.default_state()), not args.no_follow)
    if args.command == "status":
        return status.show(host, args.json)
    return 2
