"""Keeps the garbage collector's full passes short in a serving worker.

A loaded model and index are hundreds of thousands of long-lived Python objects (the TF-IDF
vocabulary, the normaliser's word tables, the network's layers): 558k at 1M responses. Python's
full (generation 2) collection walks every one of them, and it ran every few seconds under
load, holding the GIL for 300-500 ms each time: all of a worker's requests waited, and those
pauses were most of the 32-client p99 at 1M (docs/performance.md). The objects of a load never
become garbage while they serve, so after each load they are moved to the collector's
permanent generation (:func:`gc.freeze`), which no collection walks; requests' own garbage is
still collected as before. While a worker loads its first model nothing else runs, so the
collector waits (:func:`collection_paused`): at 1M it made eight full passes of up to 0.3 s
over the objects being loaded.

Example:
    >>> freeze_loaded_objects() >= 0.0
    True
    >>> gc.get_freeze_count() > 0
    True
    >>> gc.unfreeze()
    >>> with collection_paused():
    ...     gc.isenabled()
    False
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_loaded_objects() -> float:
    """Collects once, then freezes every object that survived; returns the seconds it took.

    The objects frozen by an earlier call are thawed first, so that the collection frees what
    a replaced model left in reference cycles: each call leaves in the permanent generation
    only what is alive now.
    """
    start = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    return time.perf_counter() - start


@contextmanager
def collection_paused() -> Iterator[None]:
    """No automatic collection inside (explicit ``gc.collect()`` calls still run); the
    collector is left as it was found. For a first load only: during a hot reload requests
    are being served, and their reference cycles need the collector."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
