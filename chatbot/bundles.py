"""A model repository: versioned bundles of a model artifact and the index it encoded.

Layout::

    REPO/
      v000001/            one bundle, never changed once published
        model/            a model artifact (chatbot.artifact)
        index/            its response index (chatbot.index), encoded by that model
        bundle.json       when and from what it was published
      v000002/ ...
      .staging-*/         a publication in progress (or one a crash interrupted): ignored

A bundle appears whole or not at all: it is written under ``.staging-*`` and renamed to its
version, which ``rename(2)`` does atomically and refuses when another publisher took the name
first. Versions sort by publication. The two parts only make sense together (vectors of
another model are meaningless), so :func:`check_bundle` refuses an index of another model.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatbot.errors import BundleError
from chatbot.files import check_files, read_manifest_file, write_json

BUNDLE = "bundle.json"
MODEL = "model"
INDEX = "index"
STAGING_PREFIX = ".staging-"
RELOAD_REQUEST = ".reload-request"  # touched to ask every server of the repository to check it
_VERSION = re.compile(r"^v(\d{6,})$")
STALE_STAGING_S = 3600.0  # a staging folder this old belongs to a publisher that died


@dataclass(frozen=True)
class Bundle:
    """A published version: where its model and index are."""

    repository: Path
    version: str

    @property
    def path(self) -> Path:
        return self.repository / self.version

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    @property
    def index_dir(self) -> Path:
        return self.path / INDEX

    def info(self) -> dict[str, Any]:
        """The bundle's ``bundle.json``."""
        return read_manifest_file(self.path / BUNDLE, "model bundle", BundleError)


def versions(repository: Path) -> list[str]:
    """The published versions in ``repository``, oldest first (empty if it does not exist).

    Example:
        >>> import tempfile
        >>> repo = Path(tempfile.mkdtemp())
        >>> for name in ("v000002", "v000010", ".staging-x", "notes"):
        ...     (repo / name).mkdir()
        >>> versions(repo)
        ['v000002', 'v000010']
    """
    if not repository.is_dir():
        return []
    found = [p.name for p in repository.iterdir() if _VERSION.match(p.name) and p.is_dir()]
    return sorted(found, key=lambda name: int(name[1:]))


def newest(repository: Path) -> Bundle | None:
    """The most recently published bundle, or None when there is none."""
    published = versions(repository)
    return Bundle(repository, published[-1]) if published else None


def find(repository: Path, version: str) -> Bundle:
    """The bundle ``version`` of ``repository``; BundleError when it is not there."""
    if not _VERSION.match(version):
        raise BundleError(f"{version!r} is not a bundle version (they look like v000001)")
    if version not in versions(repository):
        known = ", ".join(versions(repository)[-5:]) or "none"
        raise BundleError(f"{repository}: has no version {version} (newest: {known})")
    return Bundle(repository, version)


def check_bundle(model_dir: Path, index_dir: Path, verify: bool = True) -> dict[str, Any]:
    """Checks that an artifact and an index are whole and belong together, without loading
    the model; returns what ``bundle.json`` records about them.

    Raises:
        BundleError: a file is missing or damaged, or the index was encoded by another model.
    """
    # Imported here: both modules pull in TensorFlow, which serving a repository defers.
    from chatbot import artifact as artifact_files
    from chatbot import index as index_files

    model = read_manifest_file(model_dir / artifact_files.MANIFEST, "model artifact", BundleError)
    index = read_manifest_file(index_dir / index_files.MANIFEST, "response index", BundleError)
    model_files = model.get("files", {})
    index_listed = index.get("files", {})
    check_files(model_dir, model_files, model_files, BundleError, verify)
    check_files(index_dir, index_listed, index_listed, BundleError, verify)
    weights = model_files.get(artifact_files.WEIGHTS)
    if index.get("model_checksum") != weights:
        raise BundleError(
            f"{index_dir}: encoded by model {index.get('model_version')}, not by "
            f"{model.get('version')} at {model_dir} (re-run `chatbot index --model {model_dir}`)"
        )
    return {
        "model_version": model.get("version"),
        "model_checksum": weights,
        "responses": index.get("n"),
    }


def publish(
    repository: Path,
    model_dir: Path,
    index_dir: Path,
    *,
    note: str = "",
    link_model: bool = False,
) -> Bundle:
    """Copies a model and its index into ``repository`` as its next version, atomically.

    Args:
        repository: the model repository (created when missing).
        model_dir: a model artifact.
        index_dir: an index that artifact encoded.
        note: why this version exists (kept in ``bundle.json``).
        link_model: hard-link the model's files instead of copying them (for a model that is
            already in the repository, whose files never change).

    Raises:
        BundleError: the two do not belong together, or a file is damaged.
    """
    return publish_with(
        repository,
        model_dir,
        lambda out: shutil.copytree(index_dir, out),
        note=note,
        link_model=link_model,
    )


def publish_with(
    repository: Path,
    model_dir: Path,
    write_index: Callable[[Path], object],
    *,
    note: str = "",
    link_model: bool = False,
) -> Bundle:
    """Like :func:`publish`, with the index written by ``write_index(folder)`` (an edited
    index, say) straight into the bundle being staged."""
    with staging(repository) as stage:
        copy = _link_or_copy if link_model else shutil.copy2
        shutil.copytree(model_dir, stage.path / MODEL, copy_function=copy)
        write_index(stage.path / INDEX)
        stage.note = note
    assert stage.bundle is not None  # set when the block succeeds
    return stage.bundle


@dataclass
class Staging:
    """A bundle being written: fill ``path / MODEL`` and ``path / INDEX``."""

    path: Path
    note: str = ""
    bundle: Bundle | None = None


@contextmanager
def staging(repository: Path) -> Iterator[Staging]:
    """A scratch folder that becomes the repository's next version when the block succeeds.

    The bundle is checked (checksums, index of this model) before it gets a version; on any
    error, or a crash, no version appears and the staging folder is removed (by the next
    publication, after a crash).
    """
    repository.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(repository)
    stage = Staging(repository / f"{STAGING_PREFIX}{uuid.uuid4().hex}")
    stage.path.mkdir()
    try:
        yield stage
        facts = check_bundle(stage.path / MODEL, stage.path / INDEX)
        facts |= {
            "published": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "note": stage.note,
        }
        write_json(stage.path / BUNDLE, facts)
        _sync_tree(stage.path)
        stage.bundle = _claim_next_version(repository, stage.path)
    finally:
        shutil.rmtree(stage.path, ignore_errors=True)


def _claim_next_version(repository: Path, stage: Path) -> Bundle:
    """Renames ``stage`` to the next free version; a rival publisher makes it try the next."""
    while True:
        published = versions(repository)
        number = int(published[-1][1:]) + 1 if published else 1
        version = f"v{number:06d}"
        try:
            # Fails (ENOTEMPTY/EEXIST) if a rival took this name in the meantime.
            stage.rename(repository / version)
        except OSError:
            if not (repository / version).exists():
                raise
            continue
        _fsync_dir(repository)
        return Bundle(repository, version)


def request_reload(repository: Path) -> None:
    """Asks every server of ``repository`` (all workers, all replicas) to check it now."""
    (repository / RELOAD_REQUEST).touch()  # sets the time of an existing marker too


def reload_requested_at(repository: Path) -> float:
    """When a reload was last requested (0.0 if never)."""
    try:
        return (repository / RELOAD_REQUEST).stat().st_mtime
    except OSError:
        return 0.0


def _remove_stale_staging(repository: Path, now: Callable[[], float] = time.time) -> None:
    for path in repository.glob(STAGING_PREFIX + "*"):
        try:
            if now() - path.stat().st_mtime > STALE_STAGING_S:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:  # removed by a rival in the meantime
            continue


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _sync_tree(root: Path) -> None:
    """Flushes every file of ``root`` to disk, so a power cut cannot leave a named version
    with missing data (a rename is only as durable as what it names)."""
    for folder, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
