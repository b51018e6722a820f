"""Keep the garbage collector's full passes off the request path.

The host's heap holds a few hundred thousand long-lived objects (pandas,
scikit-learn, the Azure SDKs): a full collection walks them all, about 80 ms on
2 cores, and stops every request while it does. Those objects are never
garbage, so once the app is loaded they move to the permanent generation
(``gc.freeze``), and full passes only walk what was created since.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect what start-up left behind, then freeze the rest (once the app and its imports are loaded)."""
    gc.collect()
    gc.freeze()


def keep() -> None:
    """Freeze what was just loaded for good (a model, its libraries); no collection, so no pause."""
    gc.freeze()
