"""Local promotion ledger: one row per run, claimed with a conditional insert."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.local.db import connect, now
from shared.ports import PromotionLedger

# A claim this old without a decision belongs to a handler that died: it may be retaken.
STALE_CLAIM = timedelta(minutes=10)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return True  # a claim without an owner: only its age can free it
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalPromotionLedger(PromotionLedger):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def claim(self, run_id: str) -> bool:
        db = connect(self.state_dir)
        stamp = now()
        owner = json.dumps({"owner_pid": os.getpid()})
        inserted = db.execute("INSERT OR IGNORE INTO promotions (run_id, state, decision_json, created_at, "
                              "updated_at) VALUES (?, 'started', ?, ?, ?)", (run_id, owner, stamp, stamp)).rowcount
        if inserted:
            return True
        row = db.execute("SELECT decision_json, updated_at FROM promotions WHERE run_id=? AND state='started'",
                         (run_id,)).fetchone()
        if row is None:
            return False
        stale_before = (datetime.now(UTC) - STALE_CLAIM).isoformat(timespec="milliseconds")
        if row["updated_at"] >= stale_before and _alive(json.loads(row["decision_json"]).get("owner_pid")):
            return False
        # The claimer died (a crash mid-promotion): take over, once, whoever asks first.
        retaken = db.execute("UPDATE promotions SET decision_json=?, updated_at=? WHERE run_id=? AND state='started' "
                             "AND updated_at=?", (owner, stamp, run_id, row["updated_at"])).rowcount
        return bool(retaken)

    def finish(self, run_id: str, decision: dict[str, Any]) -> None:
        connect(self.state_dir).execute(
            "UPDATE promotions SET state='done', decision_json=?, updated_at=? WHERE run_id=?",
            (json.dumps(decision), now(), run_id))

    def decision(self, run_id: str) -> dict[str, Any] | None:
        row = connect(self.state_dir).execute("SELECT decision_json FROM promotions WHERE run_id=? AND state='done'",
                                              (run_id,)).fetchone()
        return dict(json.loads(row[0])) if row else None

    def release(self, run_id: str) -> None:
        connect(self.state_dir).execute("DELETE FROM promotions WHERE run_id=? AND state='started'", (run_id,))
