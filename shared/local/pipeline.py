"""Local training pipeline: runs queued in SQLite, trained by one worker process at a time."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.local.db import connect, now
from shared.ports import RunInfo, TrainingPipeline, TrainingRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredRequest:
    """A run's training request as the run queue keeps it (``runs.request_json``)."""

    model_name: str
    dataset_name: str
    dataset_version: int
    target: str
    metric: str
    time_budget_s: int
    excluded_columns: tuple[str, ...] = ()
    pipeline: str = ""
    trace_parent: str = ""
    data_time: str = ""

    @classmethod
    def of(cls, request: TrainingRequest) -> StoredRequest:
        return cls(request.model_name, request.dataset.name, request.dataset.version, request.target,
                   request.metric, request.time_budget_s, tuple(request.excluded_columns), request.pipeline,
                   request.trace_parent, request.data_time)

    @classmethod
    def from_json(cls, text: str) -> StoredRequest:
        body = json.loads(text)
        return cls(str(body["model_name"]), str(body["dataset_name"]), int(body["dataset_version"]),
                   str(body["target"]), str(body["metric"]), int(body["time_budget_s"]),
                   tuple(body.get("excluded_columns") or ()), str(body.get("pipeline") or ""),
                   str(body.get("trace_parent") or ""), str(body.get("data_time") or ""))

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "excluded_columns": list(self.excluded_columns)})


def row_to_run(row: sqlite3.Row) -> RunInfo:
    return RunInfo(run_id=row["run_id"], model_name=row["model_name"], dataset_name=row["dataset_name"],
                   dataset_version=row["dataset_version"], metric=row["metric"], state=row["state"],
                   upload_id=row["upload_id"], pipeline=row["pipeline"], progress=json.loads(row["progress_json"]),
                   result=json.loads(row["result_json"]), error=row["error"], created_at=row["created_at"],
                   updated_at=row["updated_at"],
                   excluded_columns=StoredRequest.from_json(row["request_json"]).excluded_columns)


def worker_lock_path(state_dir: Path) -> Path:
    return state_dir / "worker.lock"


def worker_pid_path(state_dir: Path) -> Path:
    return state_dir / "worker.pid"


def stop_worker(state_dir: Path) -> int | None:
    """Stop the training worker of ``state_dir`` and its training processes (its session); returns its pid.

    A run it was training is picked up again by the next worker, as after a crash.
    """
    if not worker_running(state_dir):
        return None
    try:
        pid = int(worker_pid_path(state_dir).read_text().strip())
        os.killpg(pid, signal.SIGTERM)  # the worker leads its own session: its forkserver children go too
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def worker_running(state_dir: Path) -> bool:
    path = worker_lock_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


class LocalTrainingPipeline(TrainingPipeline):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.resume()

    def resume(self) -> None:
        """After a restart: a worker for runs a crash left queued or running, or events never delivered."""
        if not (self.state_dir / "state.db").exists():
            return
        pending = connect(self.state_dir).execute(
            "SELECT 1 FROM runs WHERE state IN ('queued', 'running') OR event_pending=1 LIMIT 1").fetchone()
        if pending:
            self.ensure_worker()

    def submit(self, request: TrainingRequest, idempotency_key: str | None = None) -> tuple[RunInfo, bool]:
        db = connect(self.state_dir)
        if idempotency_key:
            seen = db.execute("SELECT * FROM runs WHERE idempotency_key=?", (idempotency_key,)).fetchone()
            if seen:
                return row_to_run(seen), False
        run_id = f"run_{uuid.uuid4().hex[:16]}"
        stamp = now()
        body = StoredRequest.of(request).to_json()
        db.execute("BEGIN IMMEDIATE")
        try:
            if idempotency_key:  # checked again inside the transaction: two racing posts start one run
                seen = db.execute("SELECT * FROM runs WHERE idempotency_key=?", (idempotency_key,)).fetchone()
                if seen:
                    db.execute("COMMIT")
                    return row_to_run(seen), False
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM runs").fetchone()[0]
            db.execute("INSERT INTO runs (run_id, model_name, dataset_name, dataset_version, request_json, metric, "
                       "state, upload_id, seq, progress_json, pipeline, idempotency_key, created_at, updated_at) "
                       "VALUES (?,?,?,?,?,?, 'queued', ?,?,?,?,?,?,?)",
                       (run_id, request.model_name, request.dataset.name, request.dataset.version, body,
                        request.metric, request.upload_id, seq,
                        json.dumps({"step": "queued", "budget_s": request.time_budget_s}), request.pipeline,
                        idempotency_key, stamp, stamp))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.ensure_worker()
        run = self.get_run(run_id)
        assert run is not None
        return run, True

    def cancel(self, run_id: str) -> RunInfo | None:
        db = connect(self.state_dir)
        stamp = now()
        db.execute("UPDATE runs SET state='cancelled', error='cancelled before it started', updated_at=? "
                   "WHERE run_id=? AND state='queued'", (stamp, run_id))
        # A running run is stopped by its worker, which watches this flag.
        db.execute("UPDATE runs SET cancel_requested=1, updated_at=? WHERE run_id=? AND state='running'",
                   (stamp, run_id))
        return self.get_run(run_id)

    def ensure_worker(self) -> None:
        """Start the worker process unless one holds the lock (it exits by itself when idle)."""
        if worker_running(self.state_dir):
            return
        log_file = open(self.state_dir / "worker.log", "ab")  # noqa: SIM115 - handed to the child
        subprocess.Popen([sys.executable, "-m", "shared.local.worker", "--state-dir", str(self.state_dir)],
                         stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
                         cwd=Path(__file__).resolve().parents[2], env=os.environ.copy())
        log_file.close()

    def get_run(self, run_id: str) -> RunInfo | None:
        row = connect(self.state_dir).execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row_to_run(row) if row else None

    def list_runs(self, model_name: str | None = None, limit: int = 50) -> list[RunInfo]:
        rows = connect(self.state_dir).execute(
            "SELECT * FROM runs WHERE (? IS NULL OR model_name=?) ORDER BY seq DESC LIMIT ?",
            (model_name, model_name, limit)).fetchall()
        return [row_to_run(r) for r in rows]
