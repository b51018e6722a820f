"""Which training run goes next: for each model the newest data wins, whatever order the uploads arrived in.

Uploads are ingested in parallel, so submission order is not upload order. Runs
are ranked by their data's time (the upload's time, or the dataset's for a REST
call). Both backends apply this rule: the local run queue when it claims a run,
the Azure pipeline before it starts a job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


FINISHED = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.SUPERSEDED, RunState.CANCELLED})


@dataclass(frozen=True)
class Candidate:
    """A run as the rule sees it."""

    run_id: str
    upload_id: str | None  # None: started by a REST call, not by new data
    data_time: str  # sortable
    seq: int  # submission order, the tie-break


@dataclass(frozen=True)
class NextRun:
    run: Candidate | None  # None: nothing of this model should train now
    superseded: tuple[tuple[Candidate, str], ...]  # each with the reason recorded on it


def choose(model: str, waiting: Sequence[Candidate], started: Sequence[Candidate]) -> NextRun:
    """Of ``model``'s ``waiting`` runs, the one to train; the others are superseded.

    ``started`` are the model's runs already running or completed. Waiting runs
    on older data than the chosen one are superseded, and so is the chosen one
    when it carries an upload older than one already started.
    """
    if not waiting:
        return NextRun(None, ())
    newest = max(waiting, key=lambda c: (c.data_time, c.seq))
    superseded = [(c, f"a newer upload of model {model} arrived before training started")
                  for c in waiting if c.run_id != newest.run_id]
    if newest.upload_id and any(s.upload_id and s.data_time > newest.data_time for s in started):
        superseded.append((newest, f"a newer upload of model {model} was already trained"))
        return NextRun(None, tuple(superseded))
    return NextRun(newest, tuple(superseded))
