"""The loaded objects leave the collector's full passes, and a later load frees what the
replaced one left in reference cycles."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from service.heap import collection_paused, freeze_loaded_objects


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_frozen_object_is_left_to_no_collection() -> None:
    node = _Node()
    alive = weakref.ref(node)
    frozen_before = gc.get_freeze_count()
    freeze_loaded_objects()
    assert gc.get_freeze_count() > frozen_before
    assert gc.get_objects(generation=2).count(node) == 0  # no generation walks it
    del node
    gc.collect()
    assert alive() is not None  # frozen: a full collection did not look at it


def test_the_next_freeze_frees_cycles_dropped_since_the_last() -> None:
    node = _Node()
    alive = weakref.ref(node)
    freeze_loaded_objects()
    del node
    freeze_loaded_objects()
    assert alive() is None


def test_garbage_made_before_the_freeze_is_collected_not_frozen() -> None:
    node = _Node()
    alive = weakref.ref(node)
    del node
    freeze_loaded_objects()
    assert alive() is None


def test_collection_is_paused_inside_and_left_as_found() -> None:
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_collection_resumes_when_the_load_fails() -> None:
    with pytest.raises(ValueError), collection_paused():
        raise ValueError("the index is broken")
    assert gc.isenabled()
