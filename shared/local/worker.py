"""The local training worker: ``python -m shared.local.worker --state-dir DIR``.

One per state folder (a file lock). It puts three parts together: the run queue
(``run_queue``: claim, supersede, cancel), the training job (``training_job``:
request in, result out, in a child process) and the event outbox
(``event_outbox``: RunCompleted until acknowledged). It exits after a while
without work. A worker that died mid-run leaves the run ``running``: the next
worker queues it again.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import multiprocessing
import os
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

from shared.local import training_job
from shared.local.event_outbox import deliver_pending
from shared.local.pipeline import worker_lock_path, worker_pid_path
from shared.local.run_queue import RunQueue
from shared.ports import RunInfo
from shared.settings import Settings

log = logging.getLogger("training-worker")
# Children fork from a server that imported the heavy libraries once: a run starts in milliseconds,
# with a clean process (no inherited SQLite connections or threads) every time.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["pandas", "sklearn.pipeline", "flaml", "lightgbm", "xgboost", "onnxruntime",
                                 "skl2onnx", "mlflow", "shared.local.automl", "shared.local.training_job"])
EVENT_RETRY_S = 5.0


class Worker:
    """Claims runs from the queue, trains each in a child process, and delivers their events."""

    def __init__(self, state_dir: Path, settings: Settings) -> None:
        self.state_dir = state_dir
        self.settings = settings
        self.queue = RunQueue(state_dir)

    def train(self, run: RunInfo) -> None:
        """Train in a child process, so a cancel can stop it at once and a crash cannot take the worker down."""
        child = _CONTEXT.Process(target=_train_in_child, args=(str(self.state_dir), run.run_id), daemon=True)
        child.start()
        while child.is_alive():
            child.join(0.5)
            if child.is_alive() and self.queue.cancel_requested(run.run_id):
                child.terminate()
                child.join(10)
                if child.is_alive():
                    child.kill()
                    child.join()
                self.queue.cancelled(run)
                return
        if self.queue.still_running(run.run_id):  # the child died without recording an outcome
            self.queue.failed(run.run_id, f"the training process exited with code {child.exitcode}")

    def train_here(self, run: RunInfo) -> None:
        from opentelemetry.trace import SpanKind

        from shared import telemetry

        request = self.queue.request(run.run_id)
        try:
            # The run joins the operation of the upload (or REST call) that started it.
            with telemetry.span(f"train {run.model_name}", kind=SpanKind.CONSUMER, traceparent=request.trace_parent,
                                attributes={"run.id": run.run_id, "model.name": run.model_name}):
                request = replace(request, trace_parent=telemetry.current_traceparent() or request.trace_parent)
                self.queue.save_request(run.run_id, request)
                result = training_job.train(self.state_dir, run, request,
                                            lambda progress: self.queue.progress(run.run_id, progress))
        except Exception as error:
            log.exception("Run %s failed", run.run_id)
            self.queue.failed(run.run_id, f"{type(error).__name__}: {error}")
            (self.state_dir / "runs" / run.run_id).mkdir(parents=True, exist_ok=True)
            (self.state_dir / "runs" / run.run_id / "error.txt").write_text(traceback.format_exc())
            return
        self.queue.completed(run.run_id, result)

    def serve(self) -> None:
        self.queue.recover()
        idle_since = time.monotonic()
        while True:
            delivered = deliver_pending(self.queue, self.settings)
            run = self.queue.claim()
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


def _train_in_child(state_dir: str, run_id: str) -> None:
    from shared import telemetry

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    os.environ["OTEL_SERVICE_NAME"] = "training-worker"
    telemetry.configure("training-worker")
    worker = Worker(Path(state_dir), Settings.from_env())
    try:
        worker.train_here(worker.queue.run(run_id))
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
