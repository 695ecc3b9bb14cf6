"""Keeps the garbage collector's full passes short in a serving worker.

A loaded model and index are hundreds of thousands of long-lived Python objects (the TF-IDF
vocabulary, the normaliser's word tables, the network's layers): 558k at 1M responses. Python's
full (generation 2) collection walks every one of them, and it ran every few seconds under
load, holding the GIL for 300-500 ms each time: all of a worker's requests waited, and those
pauses were most of the 32-client p99 at 1M (docs/performance.md). The objects of a load never
become garbage while they serve, so after each load they are moved to the collector's
permanent generation (:func:`gc.freeze`), which no collection walks; requests' own garbage is
still collected as before.

Example:
    >>> freeze_loaded_objects() >= 0.0
    True
    >>> gc.get_freeze_count() > 0
    True
    >>> gc.unfreeze()
"""

from __future__ import annotations

import gc
import time


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
