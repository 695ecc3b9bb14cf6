"""A pre-encoded response repository: response vectors, their texts, and the model they fit.

Layout::

    vectors.f32.npy   (n, d) float32 response vectors r
    vectors.f16.npy   the same in float16 (half the memory, for large repositories/GPUs)
    texts.jsonl       one JSON string a line: the text shown for each vector
    normalized.jsonl  the same responses as the model saw them (normalised), when known
    lexical.npz       hybrid models only: the responses' sparse TF-IDF rows (scipy CSR)
    manifest.json     format, model version and weights checksum, n, dim, file checksums

An index is tied to the model that encoded it: loading it for another model fails. Its
manifest says whether the shown texts are what people wrote (``"display": "raw"``) or only
the normalised form an already-normalised UDC CSV had (``"display": "normalized"``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from chatbot.artifact import Artifact
from chatbot.errors import IndexLoadError
from chatbot.files import atomic_dir, check_files, sha256_file, write_json

FORMAT = 1
VECTORS = "vectors.f32.npy"
VECTORS_F16 = "vectors.f16.npy"
TEXTS = "texts.jsonl"
NORMALIZED = "normalized.jsonl"
DISPLAYS = ("raw", "normalized")
LEXICAL = "lexical.npz"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ResponseIndex:
    """Response vectors and their texts.

    Example:
        >>> index = ResponseIndex(np.eye(2, dtype="float32"), ["yes", "no"], {})
        >>> len(index)
        2
    """

    vectors: np.ndarray
    texts: list[str]
    manifest: dict[str, Any]
    lexical: sp.csr_matrix | None = None  # (n, lexical vocabulary) TF-IDF rows, hybrid models
    normalized: list[str] | None = None  # the texts as the model saw them, when stored

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def shows_normalized_text(self) -> bool:
        """The shown texts are normalised (stemmed, lower-cased), not what people wrote.

        Indexes written before manifests said so were normalised when built from a CSV.
        """
        display = self.manifest.get("display")
        if display is None:
            return str(self.manifest.get("source", "")).endswith(".csv")
        return display == "normalized"

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def save_index(
    path: Path,
    vectors: np.ndarray,
    texts: Sequence[str],
    artifact: Artifact,
    source: str = "",
    lexical: sp.csr_matrix | None = None,
    normalized: Sequence[str] | None = None,
    display: str = "raw",
) -> Path:
    """Writes an index for ``artifact`` to ``path`` (replacing it) atomically.

    Args:
        path: the index folder.
        vectors: ``(n, d)`` response vectors.
        texts: the text shown for each vector.
        artifact: the model that encoded them.
        source: where the responses came from (kept in the manifest).
        lexical: the responses' TF-IDF rows; required for a hybrid model's index.
        normalized: the responses as the model saw them.
        display: ``raw`` when ``texts`` are what people wrote, ``normalized`` when they are
            only the normalised form.
    """
    if len(vectors) != len(texts):
        raise ValueError(f"{len(vectors)} vectors but {len(texts)} texts")
    if normalized is not None and len(normalized) != len(texts):
        raise ValueError(f"{len(normalized)} normalised texts but {len(texts)} texts")
    if display not in DISPLAYS:
        raise ValueError(f"display must be one of {DISPLAYS}, not {display!r}")
    if lexical is not None and lexical.shape[0] != len(texts):
        raise ValueError(f"{lexical.shape[0]} lexical rows but {len(texts)} texts")
    if lexical is None and artifact.config.lexical_weight > 0:
        raise ValueError("a hybrid model's index needs the responses' lexical (TF-IDF) rows")
    with atomic_dir(path) as tmp:
        np.save(tmp / VECTORS, vectors.astype(np.float32))
        np.save(tmp / VECTORS_F16, vectors.astype(np.float16))
        _write_jsonl(tmp / TEXTS, texts)
        names = [VECTORS, VECTORS_F16, TEXTS]
        if normalized is not None:
            _write_jsonl(tmp / NORMALIZED, normalized)
            names.append(NORMALIZED)
        if lexical is not None:
            sp.save_npz(tmp / LEXICAL, sp.csr_matrix(lexical, dtype=np.float32))
            names.append(LEXICAL)
        manifest = {
            "format": FORMAT,
            "model_version": artifact.version,
            "model_checksum": artifact.checksum,
            "n": len(texts),
            "dim": int(vectors.shape[1]),
            "source": source,
            "display": display,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": {name: sha256_file(tmp / name) for name in names},
        }
        write_json(tmp / MANIFEST, manifest)
    return path


def load_index(
    path: str | Path, artifact: Artifact | None = None, verify: bool = True
) -> ResponseIndex:
    """Loads the index at ``path``; with ``artifact``, checks it was built by that model.

    Args:
        path: the index directory.
        artifact: the model that will query it.
        verify: check file checksums (reads every byte once more; off for very large indexes).
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise IndexLoadError(f"{path}: not a response index ({MANIFEST} is missing)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise IndexLoadError(f"{manifest_path}: damaged ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexLoadError(f"{manifest_path}: not an index manifest of format {FORMAT}")
    if artifact is not None and manifest.get("model_checksum") != artifact.checksum:
        raise IndexLoadError(
            f"{path}: built by model {manifest.get('model_version')}, not by {artifact.version} "
            f"(re-run `chatbot index --model {artifact.path} ...`)"
        )
    has_lexical = LEXICAL in manifest.get("files", {})
    if artifact is not None and artifact.config.lexical_weight > 0 and not has_lexical:
        raise IndexLoadError(
            f"{path}: has no {LEXICAL}, which the hybrid model {artifact.version} needs "
            f"(re-run `chatbot index --model {artifact.path} ...`)"
        )
    has_normalized = NORMALIZED in manifest.get("files", {})
    optional = (LEXICAL,) * has_lexical + (NORMALIZED,) * has_normalized
    check_files(path, manifest["files"], (VECTORS, TEXTS, *optional), IndexLoadError, verify)
    vectors = np.load(path / VECTORS)
    texts = _read_jsonl(path / TEXTS)
    normalized = _read_jsonl(path / NORMALIZED) if has_normalized else None
    if normalized is not None and len(normalized) != len(texts):
        raise IndexLoadError(f"{path}: {len(normalized)} normalised texts, {len(texts)} texts")
    if vectors.shape != (manifest["n"], manifest["dim"]) or len(texts) != manifest["n"]:
        raise IndexLoadError(
            f"{path}: holds {vectors.shape} vectors and {len(texts)} texts, manifest says "
            f"({manifest['n']}, {manifest['dim']})"
        )
    if artifact is not None and manifest["dim"] != artifact.model.encoding_dim:
        raise IndexLoadError(
            f"{path}: vectors of size {manifest['dim']}, "
            f"the model encodes {artifact.model.encoding_dim}"
        )
    lexical = sp.load_npz(path / LEXICAL).tocsr() if has_lexical else None
    if lexical is not None and lexical.shape[0] != len(texts):
        raise IndexLoadError(f"{path}: {LEXICAL} has {lexical.shape[0]} rows, not {len(texts)}")
    lexical_model = artifact.lexical if artifact is not None else None
    if lexical is not None and lexical_model is not None and lexical.shape[1] != len(lexical_model):
        raise IndexLoadError(
            f"{path}: {LEXICAL} has {lexical.shape[1]} columns, the model's TF-IDF "
            f"vocabulary {len(lexical_model)} (re-run `chatbot index`)"
        )
    return ResponseIndex(
        vectors=vectors, texts=texts, manifest=manifest, lexical=lexical, normalized=normalized
    )


def _write_jsonl(path: Path, texts: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for text in texts:
            f.write(json.dumps(text, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]
