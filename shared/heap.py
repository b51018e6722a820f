"""Keep the garbage collector's full passes off the request path.

The host's heap holds a few hundred thousand long-lived objects (pandas,
scikit-learn, the Azure SDKs): a full collection walks them all, about 80 ms on
2 cores, and stops every request while it does. Those objects are never
garbage, so once the app is loaded they move to the permanent generation
(``gc.freeze``), and full passes only walk what was created since.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any


def settle() -> None:
    """Collect what start-up left behind, then freeze the rest (once the app and its imports are loaded)."""
    gc.collect()
    keep()


def keep() -> None:
    """Freeze what is alive now (the app, a model just loaded, their libraries).

    The collection after the freeze walks only what is not frozen (next to nothing, so no pause), and it
    resets the collector's count of long-lived objects: full passes then run as often as before, over the
    new objects only, instead of waiting for a quarter of the whole heap's size in new garbage.
    """
    gc.freeze()
    gc.collect()


def release() -> None:
    """Give the memory a big piece of work freed back to the system (after an upload is read).

    Freed memory otherwise stays with the allocators that held it, as the process's own: Arrow's pool keeps
    what its columns freed, and the C allocator keeps freed pages inside its heaps, most of all in the heaps of
    the worker threads that ran the work. The process would stay as big as its peak until the next one.
    """
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except ImportError:  # pragma: no cover - pyarrow comes with pandas here
        pass
    _trim()


def _trim() -> None:
    """glibc's ``malloc_trim``: free pages of every heap returned to the system (nothing elsewhere)."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim  # noqa: B018 - glibc only
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc: Any = None
