"""Named crash points for the reliability tests; inert unless ``FAULTS`` names them.

``FAULTS="promote.registered"`` makes the process that reaches that point die
at once (SIGKILL: no cleanup, no flush), as a power cut or an OOM kill would.
``FAULTS="fail:deploy.smoke.start"`` makes the point raise instead, every time
(a step that keeps failing, for the retry and poison path).
The tests restart the stack without it and check that nothing was lost or done
twice. One environment lookup per point: nothing on the scoring path.
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)


class InjectedFault(RuntimeError):
    """Raised at a point named ``fail:<point>`` in FAULTS."""


def crash_point(name: str) -> None:
    spec = os.environ.get("FAULTS")
    if not spec:
        return
    points = {item.strip() for item in spec.split(",")}
    if name in points:
        log.critical("Fault injected at %s: killing process %d", name, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)
    if f"fail:{name}" in points:
        raise InjectedFault(f"fault injected at {name}")
