"""Swapping versions under traffic: a request finishes on the bundle it started on, the old
one closes after its last request, and a version that fails to load is refused."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from service.metrics import Metrics
from service.serving import NotReady, Serving
from service.settings import Settings
from tests.service.fakes import FakeRanker, as_ranker


def _repository(tmp_path: Path, *versions: str) -> Path:
    repo = tmp_path / "repo"
    for version in versions:
        (repo / version).mkdir(parents=True)
    return repo


class Loader:
    """Stands in for Ranker.load: a fake ranker per bundle folder; ``broken`` ones raise."""

    def __init__(self, delay: float = 0.0, broken: tuple[str, ...] = ()) -> None:
        self.delay = delay
        self.broken = broken
        self.loaded: list[str] = []

    def __call__(self, model_dir: Path, index_dir: Path, spares: list) -> object:
        version = model_dir.parent.name
        if version in self.broken:
            raise ValueError(f"{index_dir}: built by another model")
        self.loaded.append(version)
        return as_ranker(FakeRanker(delay=self.delay))


def _serving(repo: Path, loader: Loader, **overrides: object) -> Serving:
    settings = Settings(
        repository=repo,
        poll_s=0,
        max_batch_size=4,
        spare_model=False,
        **overrides,  # type: ignore[arg-type]
    )
    return Serving(settings, Metrics(), loader)  # type: ignore[arg-type]


def test_the_newest_version_serves_and_a_new_one_is_swapped_in(tmp_path: Path) -> None:
    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001")
        serving = _serving(repo, Loader())
        await serving.start()
        assert serving.current is not None and serving.current.version == "v000001"
        (repo / "v000002").mkdir()

        result = await serving.check()

        assert (result.serving, result.swapped) == ("v000002", True)
        assert serving.swaps == 1
        again = await serving.check()
        assert (again.serving, again.swapped) == ("v000002", False)
        await serving.close()

    asyncio.run(scenario())


def test_each_loaded_version_is_frozen_out_of_garbage_collection(tmp_path: Path) -> None:
    def walked_by_the_collector(obj: object) -> bool:
        return any(o is obj for o in gc.get_objects())

    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001")
        serving = _serving(repo, Loader())
        await serving.start()
        assert serving.current is not None
        assert not walked_by_the_collector(serving.current.ranker)
        (repo / "v000002").mkdir()
        await serving.check()
        await asyncio.sleep(0)  # the heap is frozen just after the old version is released
        assert serving.current.version == "v000002"
        assert not walked_by_the_collector(serving.current.ranker)
        await serving.close()

    try:
        asyncio.run(scenario())
    finally:
        gc.unfreeze()


def test_a_request_finishes_on_the_bundle_it_started_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001")
        serving = _serving(repo, Loader(delay=0.3))
        await serving.start()

        async def ask() -> str:
            async with serving.use() as live:
                await live.batcher.respond(["hi"], 1)  # type: ignore[arg-type]
                return live.version

        slow = asyncio.create_task(ask())
        await asyncio.sleep(0.05)  # the request is on the model thread of v000001
        old = serving.current
        (repo / "v000002").mkdir()
        await serving.check()

        assert old is not None and old.retired and not old.closed.is_set()  # still in use
        assert await slow == "v000001"
        assert old.closed.is_set()  # released after its last request
        assert await ask() == "v000002"
        await serving.close()

    asyncio.run(scenario())


def test_a_swapped_out_ranker_is_freed_after_its_last_request(tmp_path: Path) -> None:
    """Even a ranker in reference cycles (as a Keras network is), still answering a request
    when it is swapped out: the heap frozen at the swap must not pin it."""

    class CyclicLoader(Loader):
        def __call__(self, model_dir: Path, index_dir: Path, spares: list) -> object:
            ranker = super().__call__(model_dir, index_dir, spares)
            ranker.itself = ranker  # type: ignore[attr-defined]
            return ranker

    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001")
        serving = _serving(repo, CyclicLoader(delay=0.3))
        await serving.start()
        assert serving.current is not None
        old_ranker = weakref.ref(serving.current.ranker)

        async def ask() -> None:
            async with serving.use() as live:
                await live.batcher.respond(["hi"], 1)  # type: ignore[arg-type]

        slow = asyncio.create_task(ask())
        await asyncio.sleep(0.05)  # in use at the swap
        (repo / "v000002").mkdir()
        await serving.check()
        await slow
        gc.collect()

        assert old_ranker() is None
        await serving.close()

    try:
        asyncio.run(scenario())
    finally:
        gc.unfreeze()


def test_a_broken_version_is_refused_once_and_the_old_one_keeps_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001")
        loader = Loader(broken=("v000002",))
        serving = _serving(repo, loader)
        await serving.start()
        (repo / "v000002").mkdir()

        result = await serving.check()
        await serving.check()  # not tried again

        assert (result.serving, result.swapped) == ("v000001", False)
        assert "built by another model" in result.refused["v000002"]
        assert loader.loaded == ["v000001"]
        assert serving.metrics.bundles_refused._value.get() == 1
        await serving.close()

    asyncio.run(scenario())


def test_startup_falls_back_to_the_newest_version_that_loads(tmp_path: Path) -> None:
    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001", "v000002")
        serving = _serving(repo, Loader(broken=("v000002",)))
        await serving.start()
        assert serving.current is not None and serving.current.version == "v000001"
        assert set(serving.refused) == {"v000002"}
        await serving.close()

    asyncio.run(scenario())


def test_a_pinned_version_serves_even_when_newer_ones_exist(tmp_path: Path) -> None:
    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001", "v000002")
        serving = _serving(repo, Loader(), version="v000001")
        await serving.start()
        assert (await serving.check()).serving == "v000001"
        await serving.close()

    asyncio.run(scenario())


def test_an_empty_repository_is_not_ready_until_a_version_appears(tmp_path: Path) -> None:
    async def scenario() -> None:
        repo = _repository(tmp_path)
        repo.mkdir()
        serving = _serving(repo, Loader())
        await serving.start()
        with pytest.raises(NotReady, match="no published version"):
            async with serving.use():
                pass
        (repo / "v000001").mkdir()
        assert (await serving.check()).serving == "v000001"
        await serving.close()

    asyncio.run(scenario())


def test_the_reload_marker_makes_the_watcher_check_at_once(tmp_path: Path) -> None:
    from chatbot import bundles

    async def scenario() -> None:
        repo = _repository(tmp_path, "v000001")
        serving = _serving(repo, Loader())  # poll_s=0: only the marker wakes it
        await serving.start()
        (repo / "v000002").mkdir()
        await asyncio.sleep(1.2)
        assert serving.current is not None and serving.current.version == "v000001"
        bundles.request_reload(repo)
        for _ in range(30):
            await asyncio.sleep(0.1)
            if serving.current.version == "v000002":
                break
        assert serving.current.version == "v000002"
        await serving.close()

    asyncio.run(scenario())
