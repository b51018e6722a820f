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
    keep()


def keep() -> None:
    """Freeze what is alive now (the app, a model just loaded, their libraries).

    The collection after the freeze walks only what is not frozen (next to nothing, so no pause), and it
    resets the collector's count of long-lived objects: full passes then run as often as before, over the
    new objects only, instead of waiting for a quarter of the whole heap's size in new garbage.
    """
    gc.freeze()
    gc.collect()
