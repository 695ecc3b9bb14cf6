"""Directories written whole or not at all, and checked against the checksums they list."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """A scratch folder (``<path>.part``) that replaces ``path`` once the block succeeds.

    A crash or an exception leaves ``path`` as it was, never half written.
    """
    tmp = path.with_name(path.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)


def read_manifest_file(path: Path, what: str, error: Callable[[str], Exception]) -> dict[str, Any]:
    """The JSON object in the manifest at ``path``; ``error(message)`` when it is missing
    (named as "not a ``what``") or is not a JSON object."""
    if not path.is_file():
        raise error(f"{path.parent}: not a {what} ({path.name} is missing)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{path}: damaged ({exc})") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: damaged (not a JSON object)")
    return data


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def check_files(
    folder: Path,
    checksums: Mapping[str, str],
    names: Iterable[str],
    error: Callable[[str], Exception],
    verify: bool = True,
) -> None:
    """Raises ``error(message)`` for the first of ``names`` in ``folder`` that is missing or,
    with ``verify``, whose SHA-256 differs from ``checksums``."""
    for name in names:
        if not (folder / name).is_file():
            raise error(f"{folder}: {name} is missing")
        if verify and sha256_file(folder / name) != checksums[name]:
            raise error(f"{folder}: {name} is damaged or was replaced (checksum mismatch)")
