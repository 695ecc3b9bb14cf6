"""Model repositories: bundles appear whole or not at all, in publication order, checked."""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chatbot import bundles
from chatbot.errors import BundleError
from tests.helpers import tiny_bundle


@pytest.fixture(scope="module")
def two_bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[tuple[Path, Path], ...]:
    root = tmp_path_factory.mktemp("bundles")
    return tiny_bundle(root / "a", seed=0), tiny_bundle(root / "b", seed=1)


def test_published_versions_are_numbered_in_order_and_hold_both_parts(two_bundles, tmp_path):
    (model_a, index_a), (model_b, index_b) = two_bundles
    repo = tmp_path / "repo"

    first = bundles.publish(repo, model_a, index_a, note="first")
    second = bundles.publish(repo, model_b, index_b)

    assert (first.version, second.version) == ("v000001", "v000002")
    assert bundles.versions(repo) == ["v000001", "v000002"]
    assert bundles.newest(repo) == second
    info = first.info()
    assert info["note"] == "first" and info["responses"] == 4
    assert json.loads((first.model_dir / "manifest.json").read_text())["files"]
    assert sorted(p.name for p in repo.iterdir()) == ["v000001", "v000002"]  # no staging left


def test_an_index_of_another_model_is_refused_and_nothing_is_published(two_bundles, tmp_path):
    (model_a, _), (_, index_b) = two_bundles
    repo = tmp_path / "repo"

    with pytest.raises(BundleError, match="encoded by model"):
        bundles.publish(repo, model_a, index_b)

    assert bundles.versions(repo) == []
    assert list(repo.iterdir()) == []


def test_a_damaged_file_is_refused(two_bundles, tmp_path):
    (model_a, index_a), _ = two_bundles
    index = shutil.copytree(index_a, tmp_path / "index")
    with (index / "texts.jsonl").open("a") as f:
        f.write('"sneaked in"\n')

    with pytest.raises(BundleError, match=r"texts\.jsonl is damaged"):
        bundles.publish(tmp_path / "repo", model_a, index)


def test_a_failure_while_staging_leaves_no_version(two_bundles, tmp_path):
    (model_a, _), _ = two_bundles
    repo = tmp_path / "repo"

    def write_index(out: Path) -> None:
        out.mkdir()
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        bundles.publish_with(repo, model_a, write_index)
    assert bundles.versions(repo) == [] and list(repo.iterdir()) == []


def test_concurrent_publishers_never_share_a_version(two_bundles, tmp_path):
    (model_a, index_a), _ = two_bundles
    repo = tmp_path / "repo"
    # Threads race for the same names just as processes would: rename(2) settles it.
    with ThreadPoolExecutor(8) as pool:
        published = list(pool.map(lambda _: bundles.publish(repo, model_a, index_a), range(8)))
    assert sorted(b.version for b in published) == [f"v{n:06d}" for n in range(1, 9)]


def test_a_stale_staging_folder_is_cleaned_up_and_never_listed(two_bundles, tmp_path):
    (model_a, index_a), _ = two_bundles
    repo = tmp_path / "repo"
    stale = repo / ".staging-crashed"
    stale.mkdir(parents=True)
    old = 1_000_000_000
    os.utime(stale, (old, old))
    assert bundles.versions(repo) == []

    bundles.publish(repo, model_a, index_a)

    assert not stale.exists()


def test_find_names_what_is_there(two_bundles, tmp_path):
    (model_a, index_a), _ = two_bundles
    repo = tmp_path / "repo"
    bundles.publish(repo, model_a, index_a)
    assert bundles.find(repo, "v000001").model_dir == repo / "v000001" / "model"
    with pytest.raises(BundleError, match="has no version v000002"):
        bundles.find(repo, "v000002")
    with pytest.raises(BundleError, match="not a bundle version"):
        bundles.find(repo, "latest")


def test_a_reload_request_is_seen_by_its_time(tmp_path):
    assert bundles.reload_requested_at(tmp_path) == 0.0
    bundles.request_reload(tmp_path)
    assert bundles.reload_requested_at(tmp_path) > 0.0
