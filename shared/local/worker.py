"""The local training worker: ``python -m shared.local.worker --state-dir DIR``.

One per state folder (a file lock); it trains queued runs one at a time, newest
upload first per model (older queued runs of that model are superseded), posts
RunCompleted to the host, and exits after a while without work. A worker that
died mid-run leaves the run ``running``: the next worker queues it again.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import multiprocessing
import os
import sqlite3
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from shared.local.db import connect, now
from shared.local.pipeline import row_to_run, worker_lock_path, worker_pid_path
from shared.ports import RunInfo
from shared.settings import Settings

log = logging.getLogger("training-worker")
# Children fork from a server that imported the heavy libraries once: a run starts in milliseconds,
# with a clean process (no inherited SQLite connections or threads) every time.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["pandas", "sklearn.pipeline", "flaml", "lightgbm", "xgboost", "onnxruntime",
                                 "skl2onnx", "mlflow", "shared.local.automl"])
EVENT_RETRY_S = 5.0


class Worker:
    def __init__(self, state_dir: Path, settings: Settings) -> None:
        self.state_dir = state_dir
        self.settings = settings

    @property
    def db(self) -> sqlite3.Connection:
        # One connection per thread: progress is reported from FLAML's watcher thread.
        return connect(self.state_dir)

    # ---- queue --------------------------------------------------------
    def recover(self) -> None:
        interrupted = self.db.execute("UPDATE runs SET state='queued', worker_pid=NULL, updated_at=? "
                                      "WHERE state='running'", (now(),)).rowcount
        if interrupted:
            log.warning("Re-queued %d run(s) interrupted by a stopped worker", interrupted)

    def next_run(self) -> RunInfo | None:
        """Claim the next run: for the model queued longest ago, the run on its newest data.

        Uploads are ingested in parallel, so queue order is not upload order: runs are ranked by the upload's
        time. Older queued runs of the model are superseded, and so is an upload older than one already trained.
        """
        while True:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                first = self.db.execute("SELECT model_name FROM runs WHERE state='queued' ORDER BY seq LIMIT 1"
                                        ).fetchone()
                if first is None:
                    self.db.execute("COMMIT")
                    return None
                model = first["model_name"]
                queued = self.db.execute("SELECT * FROM runs WHERE state='queued' AND model_name=?",
                                         (model,)).fetchall()
                newest = max(queued, key=lambda r: (_data_time(r), r["seq"]))
                superseded = [(r, f"a newer upload of model {model} arrived before training started")
                              for r in queued if r["run_id"] != newest["run_id"]]
                trained = self.db.execute("SELECT * FROM runs WHERE model_name=? AND upload_id IS NOT NULL AND "
                                          "state IN ('running', 'completed')", (model,)).fetchall()
                stale = bool(newest["upload_id"]) and any(_data_time(t) > _data_time(newest) for t in trained)
                if stale:
                    superseded.append((newest, f"a newer upload of model {model} was already trained"))
                stamp = now()
                for old, why in superseded:
                    self.db.execute("UPDATE runs SET state='superseded', error=?, updated_at=? WHERE run_id=?",
                                    (why, stamp, old["run_id"]))
                if not stale:
                    self.db.execute("UPDATE runs SET state='running', worker_pid=?, progress_json=?, updated_at=? "
                                    "WHERE run_id=?", (os.getpid(), json.dumps({"step": "starting"}), stamp,
                                                       newest["run_id"]))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            from shared.local.uploads import LocalUploadLog

            uploads = LocalUploadLog(self.state_dir)
            for old, why in superseded:
                if old["upload_id"]:
                    uploads.update(old["upload_id"], state="superseded", reason=why)
            if not stale:
                return row_to_run(self.db.execute("SELECT * FROM runs WHERE run_id=?",
                                                  (newest["run_id"],)).fetchone())

    def _progress(self, run_id: str, progress: dict[str, Any]) -> None:
        self.db.execute("UPDATE runs SET progress_json=?, updated_at=? WHERE run_id=?",
                        (json.dumps(progress, default=str), now(), run_id))

    # ---- training -----------------------------------------------------
    def train(self, run: RunInfo) -> None:
        """Train in a child process, so a cancel can stop it at once and a crash cannot take the worker down."""
        child = _CONTEXT.Process(target=_train_in_child, args=(str(self.state_dir), run.run_id), daemon=True)
        child.start()
        while child.is_alive():
            child.join(0.5)
            if child.is_alive() and self._cancel_requested(run.run_id):
                child.terminate()
                child.join(10)
                if child.is_alive():
                    child.kill()
                    child.join()
                self._cancelled(run)
                return
        state = self.db.execute("SELECT state FROM runs WHERE run_id=?", (run.run_id,)).fetchone()[0]
        if state == "running":  # the child died without recording an outcome
            self.db.execute("UPDATE runs SET state='failed', error=?, event_pending=1, updated_at=? WHERE run_id=?",
                            (f"the training process exited with code {child.exitcode}", now(), run.run_id))

    def _cancel_requested(self, run_id: str) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return bool(row and row[0])

    def _cancelled(self, run: RunInfo) -> None:
        # No RunCompleted: a cancelled run has nothing to register.
        self.db.execute("UPDATE runs SET state='cancelled', error='cancelled while running', event_pending=0, "
                        "updated_at=? WHERE run_id=?", (now(), run.run_id))
        if run.upload_id:
            from shared.local.uploads import LocalUploadLog

            LocalUploadLog(self.state_dir).update(run.upload_id, state="cancelled", reason="training was cancelled")
        log.info("Run %s cancelled", run.run_id)

    def train_here(self, run: RunInfo) -> None:
        request = json.loads(self.db.execute("SELECT request_json FROM runs WHERE run_id=?",
                                             (run.run_id,)).fetchone()[0])
        from opentelemetry.trace import SpanKind

        from shared import telemetry

        try:
            # The run joins the operation of the upload (or REST call) that started it.
            with telemetry.span(f"train {run.model_name}", kind=SpanKind.CONSUMER,
                                traceparent=request.get("trace_parent", ""),
                                attributes={"run.id": run.run_id, "model.name": run.model_name}):
                request["trace_parent"] = telemetry.current_traceparent() or request.get("trace_parent", "")
                self.db.execute("UPDATE runs SET request_json=? WHERE run_id=?", (json.dumps(request), run.run_id))
                result = self._train(run, request)
        except Exception as error:
            log.exception("Run %s failed", run.run_id)
            self.db.execute("UPDATE runs SET state='failed', error=?, event_pending=1, updated_at=? WHERE run_id=?",
                            (f"{type(error).__name__}: {error}", now(), run.run_id))
            (self.state_dir / "runs" / run.run_id).mkdir(parents=True, exist_ok=True)
            (self.state_dir / "runs" / run.run_id / "error.txt").write_text(traceback.format_exc())
            return
        self.db.execute("UPDATE runs SET state='completed', result_json=?, event_pending=1, updated_at=? "
                        "WHERE run_id=?", (json.dumps(result, default=str), now(), run.run_id))

    def _train(self, run: RunInfo, request: dict[str, Any]) -> dict[str, Any]:
        from shared import dataset_validation, drift
        from shared.local import automl, tracking
        from shared.local.datasets import LocalDatasetRegistry

        started = time.time()
        budget = float(request["time_budget_s"])
        progress: dict[str, Any] = {"step": "validate", "trials": 0, "elapsed_s": 0, "budget_s": budget}

        def report(**changes: Any) -> None:
            progress.update(changes, elapsed_s=round(time.time() - started, 1))
            self._progress(run.run_id, progress)

        report()
        dataset = LocalDatasetRegistry(self.state_dir).get(run.dataset_name, run.dataset_version)
        if dataset is None:
            raise LookupError(f"dataset {run.dataset_name}:{run.dataset_version} is not registered")
        content = Path(dataset.uri.removeprefix("file://")).read_bytes()
        validated = dataset_validation.validate(content, request["target"], max_bytes=len(content) + 1,
                                                min_rows=1)
        schema = validated.schema.without(set(request.get("excluded_columns", [])))
        run_dir = self.state_dir / "runs" / run.run_id

        def on_trial(trials: list[dict[str, Any]]) -> None:
            scored = [t for t in trials if t["cv_log_loss"] is not None]
            best = min(scored, key=lambda t: t["cv_log_loss"]) if scored else None
            report(trials=len(trials), best_cv_log_loss=best["cv_log_loss"] if best else None,
                   best_learner=best["learner"] if best else None)

        # Excluded columns stay in the stored validation split: a champion that uses them can still be scored.
        outcome = automl.train(validated.frame, schema, request["metric"], budget, run_dir, on_trial=on_trial,
                               on_step=lambda step: report(step=step))
        report(step="register", trials=len(outcome.trials))
        example = {c.name: _example_value(validated.frame, c.name) for c in schema.features}
        meta = {**automl.describe(outcome, schema), "model_name": run.model_name, "run_id": run.run_id,
                "metric": request["metric"], "example": example,
                # Excluded at training time: still accepted (and ignored) when scoring, so clients keep one row shape.
                "ignored_columns": list(request.get("excluded_columns", [])),
                "dataset": {"name": run.dataset_name, "version": run.dataset_version}}
        labels = validated.frame[schema.target].astype(str).str.strip()
        meta["drift_baseline"] = drift.baseline(validated.frame, schema.features,
                                                float((labels == str(outcome.classes[-1])).mean()))
        (run_dir / "model_meta.json").write_text(json.dumps(meta, indent=1, default=str))
        mlflow_run_id = tracking.log_run(self.state_dir, run.run_id, run.model_name, run_dir, outcome, request,
                                         validated.frame[[c.name for c in schema.features]].head(1))
        return {
            "best_learner": outcome.best_learner, "best_config": outcome.best_config,
            "threshold": outcome.threshold, "classes": outcome.classes,
            "validation_metrics": outcome.validation_metrics,
            "primary_metric": {"name": request["metric"],
                               "value": outcome.validation_metrics[_metric_key(request["metric"])]},
            "model_format": outcome.model_format, "notes": outcome.notes, "timings": outcome.timings,
            "trials": len(outcome.trials), "artifact_dir": str(run_dir), "mlflow_run_id": mlflow_run_id,
            "leaderboard": _leaderboard(outcome.trials), "feature_importance": outcome.importance,
        }

    # ---- events -------------------------------------------------------
    def send_pending_events(self) -> bool:
        """Deliver RunCompleted for finished runs not yet acknowledged; False if the host refused or was away."""
        from shared.local.events import post_run_completed

        pending = self.db.execute("SELECT * FROM runs WHERE event_pending=1 ORDER BY seq").fetchall()
        for row in pending:
            run = row_to_run(row)
            trace_parent = json.loads(row["request_json"]).get("trace_parent", "")
            try:
                post_run_completed(run, self.settings.host_url, self.settings.eventgrid_function, trace_parent)
            except Exception as error:
                log.warning("RunCompleted for %s not delivered yet (%s); will retry", run.run_id, error)
                return False
            self.db.execute("UPDATE runs SET event_pending=0 WHERE run_id=?", (run.run_id,))
        return True

    def serve(self) -> None:
        self.recover()
        idle_since = time.monotonic()
        while True:
            delivered = self.send_pending_events()
            run = self.next_run()
            if run is not None:
                log.info("Training %s for model %s (dataset %s:%s)", run.run_id, run.model_name, run.dataset_name,
                         run.dataset_version)
                self.train(run)
                idle_since = time.monotonic()
                continue
            idle = time.monotonic() - idle_since
            # Undelivered events keep the worker a while longer (the host may be restarting); they stay
            # pending in the database for the next worker either way.
            if idle > self.settings.worker_idle_s * (1 if delivered else 10):
                log.info("Idle for %.0fs: exiting%s", idle, "" if delivered else " with events still pending")
                return
            time.sleep(EVENT_RETRY_S if not delivered else 0.5)


def _data_time(row: sqlite3.Row) -> str:
    return str(json.loads(row["request_json"]).get("data_time") or row["created_at"])


def _metric_key(name: str) -> str:
    from shared import metrics

    return metrics.resolve(name).name


def _example_value(frame: Any, column: str) -> Any:
    present = frame[column].dropna()
    if present.empty:
        return None
    value = present.iloc[0]
    return value.item() if hasattr(value, "item") else value


def _leaderboard(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for trial in trials:
        loss = trial["cv_log_loss"]
        if loss is None:
            continue
        current = best.get(trial["learner"])
        if current is None or loss < current["cv_log_loss"]:
            best[trial["learner"]] = {"learner": trial["learner"], "cv_log_loss": loss, "trial": trial["trial"]}
    return sorted(best.values(), key=lambda t: t["cv_log_loss"])


def _train_in_child(state_dir: str, run_id: str) -> None:
    from shared import telemetry

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    os.environ["OTEL_SERVICE_NAME"] = "training-worker"
    telemetry.configure("training-worker")
    worker = Worker(Path(state_dir), Settings.from_env())
    row = worker.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
    try:
        worker.train_here(row_to_run(row))
    finally:
        telemetry.flush()
        # The outcome is in the database and the telemetry flushed: leave now, without waiting on exporter
        # threads that may retry for minutes when the host is gone.
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.local.worker")
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    state_dir = args.state_dir.resolve()
    lock = open(worker_lock_path(state_dir), "a")  # noqa: SIM115 - held for the life of the process
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("Another worker serves %s", state_dir)
        return 0
    worker_pid_path(state_dir).write_text(str(os.getpid()))  # whoever stops the host stops this worker too
    Worker(state_dir, Settings.from_env()).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
