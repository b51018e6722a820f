"""The local run queue in SQLite: claim the next run, supersede, cancel, record outcomes and pending events."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path

from shared import run_order, upload_states
from shared.local.db import connect, now
from shared.local.pipeline import StoredRequest, row_to_run
from shared.local.uploads import LocalUploadLog
from shared.ports import RunInfo
from shared.upload_states import UploadState, record

log = logging.getLogger("training-worker")


def _candidate(row: sqlite3.Row) -> run_order.Candidate:
    request = StoredRequest.from_json(row["request_json"])
    return run_order.Candidate(row["run_id"], row["upload_id"], request.data_time or row["created_at"], row["seq"])


class RunQueue:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.uploads = LocalUploadLog(state_dir)

    @property
    def db(self) -> sqlite3.Connection:
        # One connection per thread: progress is reported from FLAML's watcher thread.
        return connect(self.state_dir)

    def recover(self) -> None:
        """Runs left ``running`` by a worker that died are queued again."""
        interrupted = self.db.execute("UPDATE runs SET state='queued', worker_pid=NULL, updated_at=? "
                                      "WHERE state='running'", (now(),)).rowcount
        if interrupted:
            log.warning("Re-queued %d run(s) interrupted by a stopped worker", interrupted)

    def claim(self) -> RunInfo | None:
        """Claim the next run: for the model queued longest ago, the run on its newest data (``shared.run_order``)."""
        while True:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                first = db.execute("SELECT model_name FROM runs WHERE state='queued' ORDER BY seq LIMIT 1").fetchone()
                if first is None:
                    db.execute("COMMIT")
                    return None
                model = first["model_name"]
                waiting = [_candidate(r) for r in db.execute(
                    "SELECT * FROM runs WHERE state='queued' AND model_name=?", (model,)).fetchall()]
                started = [_candidate(r) for r in db.execute(
                    "SELECT * FROM runs WHERE model_name=? AND state IN ('running', 'completed')", (model,)).fetchall()]
                choice = run_order.choose(model, waiting, started)
                stamp = now()
                for old, why in choice.superseded:
                    db.execute("UPDATE runs SET state='superseded', error=?, updated_at=? WHERE run_id=?",
                               (why, stamp, old.run_id))
                if choice.run is not None:
                    db.execute("UPDATE runs SET state='running', worker_pid=?, progress_json=?, updated_at=? "
                               "WHERE run_id=?", (os.getpid(), json.dumps({"step": "starting"}), stamp,
                                                  choice.run.run_id))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            for old, why in choice.superseded:
                if old.upload_id:
                    record(self.uploads, old.upload_id, state=UploadState.SUPERSEDED, reason=why)
            if choice.run is not None:
                return self.run(choice.run.run_id)

    def run(self, run_id: str) -> RunInfo:
        return row_to_run(self.db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone())

    def request(self, run_id: str) -> StoredRequest:
        return StoredRequest.from_json(self.db.execute("SELECT request_json FROM runs WHERE run_id=?",
                                                       (run_id,)).fetchone()[0])

    def save_request(self, run_id: str, request: StoredRequest) -> None:
        self.db.execute("UPDATE runs SET request_json=? WHERE run_id=?", (request.to_json(), run_id))

    def progress(self, run_id: str, progress: dict[str, object]) -> None:
        self.db.execute("UPDATE runs SET progress_json=?, updated_at=? WHERE run_id=?",
                        (json.dumps(progress, default=str), now(), run_id))

    def cancel_requested(self, run_id: str) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return bool(row and row[0])

    def still_running(self, run_id: str) -> bool:
        return bool(self.db.execute("SELECT state FROM runs WHERE run_id=?", (run_id,)).fetchone()[0] == "running")

    def completed(self, run_id: str, result: dict[str, object]) -> None:
        """Record the outcome and leave RunCompleted pending in the outbox (``shared.local.event_outbox``)."""
        self.db.execute("UPDATE runs SET state='completed', result_json=?, event_pending=1, updated_at=? "
                        "WHERE run_id=?", (json.dumps(result, default=str), now(), run_id))

    def failed(self, run_id: str, error: str) -> None:
        self.db.execute("UPDATE runs SET state='failed', error=?, event_pending=1, updated_at=? WHERE run_id=?",
                        (error, now(), run_id))

    def cancelled(self, run: RunInfo) -> None:
        # No RunCompleted: a cancelled run has nothing to register.
        self.db.execute("UPDATE runs SET state='cancelled', error='cancelled while running', event_pending=0, "
                        "updated_at=? WHERE run_id=?", (now(), run.run_id))
        upload_states.cancelled(self.uploads, run.run_id, run.model_name, run.upload_id, "training was cancelled")
        log.info("Run %s cancelled", run.run_id)

    def pending_events(self) -> list[tuple[RunInfo, str]]:
        """Finished runs whose RunCompleted is not acknowledged yet, with their trace parent, oldest first."""
        rows = self.db.execute("SELECT * FROM runs WHERE event_pending=1 ORDER BY seq").fetchall()
        return [(row_to_run(r), StoredRequest.from_json(r["request_json"]).trace_parent) for r in rows]

    def acknowledged(self, run_id: str) -> None:
        self.db.execute("UPDATE runs SET event_pending=0 WHERE run_id=?", (run_id,))
