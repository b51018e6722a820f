"""Local promotion ledger: one row per run, claimed with a conditional insert."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.local.db import connect, now
from shared.ports import PromotionLedger

# A claim this old without a decision belongs to a handler that died: it may be retaken.
STALE_CLAIM = timedelta(minutes=10)


class LocalPromotionLedger(PromotionLedger):
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def claim(self, run_id: str) -> bool:
        db = connect(self.state_dir)
        stamp = now()
        inserted = db.execute("INSERT OR IGNORE INTO promotions (run_id, state, created_at, updated_at) "
                              "VALUES (?, 'started', ?, ?)", (run_id, stamp, stamp)).rowcount
        if inserted:
            return True
        stale_before = (datetime.now(UTC) - STALE_CLAIM).isoformat(timespec="milliseconds")
        retaken = db.execute("UPDATE promotions SET updated_at=? WHERE run_id=? AND state='started' "
                             "AND updated_at < ?", (stamp, run_id, stale_before)).rowcount
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
