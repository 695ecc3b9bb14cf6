"""A pre-encoded response repository: response vectors, their texts, and the model they fit.

Layout::

    vectors.f32.npy   (n, d) float32 response vectors r
    vectors.f16.npy   the same in float16 (half the memory, for large repositories/GPUs)
    vectors.i8.npy    very large repositories: the same as 8-bit codes with a scale a row
    vectors.scale.npy   (chatbot.int8_rows), which serving re-scores candidates from
    texts.jsonl       one JSON string a line: the text shown for each vector
    normalized.jsonl  the same responses as the model saw them (normalised), when known
    lexical.*.npy     with a TF-IDF model: the responses' TF-IDF rows (CSR data, indices, indptr)
    postings.*.npy    the same inverted, heaviest first (chatbot.postings), for lexical search
    vectors.ivf.faiss large repositories: an approximate neural index (chatbot.ann)
    sentence.i8.npy   with a sentence encoder: (n, 384) sentence vectors of the shown texts as
    sentence.scale.npy  8-bit codes and a scale a row (chatbot.int8_rows), for the semantic
                      part (chatbot.sentence); tied to that encoder's file (indexes written
                      before hold them as sentence.f16.npy or sentence.f32.npy)
    sentence.ivf.faiss large repositories: the same approximate index over those vectors
    manifest.json     format, model version and weights checksum, n, dim, file checksums

Everything is memory-mapped when loaded, so that the worker processes of one machine share
one copy of the pages, and texts are decoded only when shown (:mod:`chatbot.jsonl_texts`).
Indexes written before the ``.npy`` layout hold their TF-IDF rows in ``lexical.npz``; they
still load (their postings are then built in memory).

An index is tied to the model that encoded it: loading it for another model fails. Its
manifest says whether the shown texts are what people wrote (``"display": "raw"``) or only
the normalised form an already-normalised UDC CSV had (``"display": "normalized"``).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from chatbot.ann import ANN_FILE, ANN_MIN_RESPONSES, SENTENCE_DIMS_PER_CODE, build_ivf
from chatbot.artifact import Artifact
from chatbot.errors import IndexLoadError
from chatbot.files import atomic_dir, check_files, read_manifest_file, sha256_file, write_json
from chatbot.int8_rows import Int8Rows
from chatbot.jsonl_texts import JsonlTexts, write_jsonl
from chatbot.postings import FILES as POSTINGS_FILES
from chatbot.postings import Postings

if TYPE_CHECKING:
    from chatbot.search import SearchBackend

FORMAT = 1
VECTORS = "vectors.f32.npy"
VECTORS_F16 = "vectors.f16.npy"
# What serving re-scores candidates from in large repositories: it reads a few hundred rows
# a request from all over them, so they become resident in memory, 244 MiB at 1M responses
# of 256 dimensions against 488 in float16. The codes move a score by 0.011 (standard
# deviation, against 2.3 between a context's scores), which reorders near-ties: at the real
# Ubuntu index of 53,874 the served ranking kept 0.986 of the exact top 10 instead of 0.992
# (docs/performance.md, stop 22). So only from this many responses up, where the memory
# matters, are they written.
VECTOR_CODES = "vectors.i8.npy"
VECTOR_SCALES = "vectors.scale.npy"
VECTOR_CODES_MIN_RESPONSES = 500_000
# 8-bit codes with a scale a row: a quarter of float32's memory (366 MiB at 1M responses
# instead of 1,465), for a cosine error of about 4e-4 (docs/performance.md, "Sentence vectors
# in 8 bits").
SENTENCE_CODES = "sentence.i8.npy"
SENTENCE_SCALES = "sentence.scale.npy"
# Layouts written before, which still load: float16 (early stop 21) and float32 (stop 20).
SENTENCE_VECTORS_F16 = "sentence.f16.npy"
SENTENCE_VECTORS_F32 = "sentence.f32.npy"
# Each layout's files, the current one first.
SENTENCE_LAYOUTS = (
    (SENTENCE_CODES, SENTENCE_SCALES),
    (SENTENCE_VECTORS_F16,),
    (SENTENCE_VECTORS_F32,),
)
SENTENCE_ANN = "sentence.ivf.faiss"
TEXTS = "texts.jsonl"
NORMALIZED = "normalized.jsonl"
DISPLAYS = ("raw", "normalized")
LEXICAL = {
    "data": "lexical.data.npy",
    "indices": "lexical.indices.npy",
    "indptr": "lexical.indptr.npy",
}
LEXICAL_NPZ = "lexical.npz"  # the layout before memory-mapping
MANIFEST = "manifest.json"
PRECISIONS = ("float32", "float16")


@dataclass(frozen=True)
class ResponseIndex:
    """Response vectors and their texts.

    Example:
        >>> index = ResponseIndex(np.eye(2, dtype="float32"), ["yes", "no"], {})
        >>> len(index)
        2
    """

    vectors: np.ndarray  # (n, d) float32, or float16 when loaded so
    texts: Sequence[str]
    manifest: dict[str, Any]
    lexical: sp.csr_matrix | None = None  # (n, lexical vocabulary) TF-IDF rows
    normalized: Sequence[str] | None = None  # the texts as the model saw them, when stored
    postings: Postings | None = None  # ``lexical`` inverted, for lexical search
    ann_path: Path | None = None  # the stored approximate neural index, when there is one
    sentence: Int8Rows | np.ndarray | None = None  # (n, dim) sentence vectors (float rows)
    sentence_ann_path: Path | None = None  # their stored approximate index, when there is one
    codes: Int8Rows | None = None  # ``vectors`` in 8 bits, when stored (with an ANN index)

    def __post_init__(self) -> None:
        if self.lexical is not None and self.postings is None:
            object.__setattr__(self, "postings", Postings.from_rows(self.lexical))

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

    @property
    def rescoring_vectors(self) -> Int8Rows | np.ndarray:
        """What candidates' neural scores are read from, a few rows at a time: the 8-bit
        codes when stored, else the vectors. Exact search reads ``vectors``."""
        return self.codes if self.codes is not None else self.vectors

    @functools.cached_property
    def sentence_search(self) -> SearchBackend:
        """The search over the sentence vectors: their stored approximate index when there
        is one (at the real Ubuntu index's 53,874, 0.5 ms a query instead of 4.6 ms exact,
        keeping 0.975 of the exact best 128 with 256 cells visited: docs/performance.md),
        else exact."""
        from chatbot.ann import StoredIvfSearch
        from chatbot.search import make_backend

        if self.sentence is None:
            raise ValueError(
                "the model's semantic part needs an index with sentence vectors "
                "(rebuild it with `chatbot index`)"
            )
        if self.sentence_ann_path is not None:
            info = self.manifest.get("sentence_ann", {})
            return StoredIvfSearch.from_manifest(self.sentence_ann_path, info, self.sentence)
        # Exact search only below ANN_MIN_RESPONSES: a float32 copy of at most 77 MB.
        return make_backend("numpy", np.asarray(self.sentence, dtype=np.float32))


def save_index(
    path: Path,
    vectors: np.ndarray,
    texts: Sequence[str],
    artifact: Artifact,
    source: str = "",
    lexical: sp.csr_matrix | None = None,
    normalized: Sequence[str] | None = None,
    display: str = "raw",
    ann: bool | None = None,
    progress: bool = False,
    sentence: np.ndarray | None = None,
    codes: bool | None = None,
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
        ann: also write an approximate neural index (:mod:`chatbot.ann`); by default from
            :data:`chatbot.ann.ANN_MIN_RESPONSES` responses up.
        progress: show progress bars.
        sentence: ``(n, dim)`` sentence vectors of ``texts`` by the artifact's sentence
            encoder; required when its score has a semantic part.
        codes: also write the vectors as 8-bit codes, which serving then re-scores from; by
            default from :data:`VECTOR_CODES_MIN_RESPONSES` responses up.
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
    if sentence is not None and len(sentence) != len(texts):
        raise ValueError(f"{len(sentence)} sentence vectors but {len(texts)} texts")
    if sentence is None and artifact.config.semantic_weight > 0:
        raise ValueError("the model's semantic part needs the responses' sentence vectors")
    with atomic_dir(path) as tmp:
        np.save(tmp / VECTORS, vectors.astype(np.float32))
        np.save(tmp / VECTORS_F16, vectors.astype(np.float16))
        write_jsonl(tmp / TEXTS, texts)
        names = [VECTORS, VECTORS_F16, TEXTS]
        if normalized is not None:
            write_jsonl(tmp / NORMALIZED, normalized)
            names.append(NORMALIZED)
        if lexical is not None:
            rows = sp.csr_matrix(lexical, dtype=np.float32)
            rows.sum_duplicates()
            for part, name in LEXICAL.items():
                np.save(tmp / name, getattr(rows, part))
            names += [*LEXICAL.values(), *Postings.from_rows(rows).save(tmp)]
        with_ann = ann if ann is not None else len(texts) >= ANN_MIN_RESPONSES
        sentence_info: dict[str, Any] = {}
        if sentence is not None:
            names += _save_int8(tmp, sentence, SENTENCE_CODES, SENTENCE_SCALES)
            sentence_info = {"sentence_model": artifact.sentence_checksum}
            if with_ann:
                sentence_info["sentence_ann"] = build_ivf(
                    sentence, tmp / SENTENCE_ANN, dims_per_code=SENTENCE_DIMS_PER_CODE
                )
                names.append(SENTENCE_ANN)
        ann_info = None
        if with_ann:
            ann_info = build_ivf(vectors, tmp / ANN_FILE, progress=progress)
            names.append(ANN_FILE)
        with_codes = codes if codes is not None else len(texts) >= VECTOR_CODES_MIN_RESPONSES
        if with_codes:
            names += _save_int8(tmp, vectors, VECTOR_CODES, VECTOR_SCALES)
        manifest = {
            "format": FORMAT,
            "model_version": artifact.version,
            "model_checksum": artifact.checksum,
            "n": len(texts),
            "dim": int(vectors.shape[1]),
            "source": source,
            "display": display,
            **({"lexical_words": int(lexical.shape[1])} if lexical is not None else {}),
            **({"ann": ann_info} if ann_info is not None else {}),
            **sentence_info,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "files": {name: sha256_file(tmp / name) for name in names},
        }
        write_json(tmp / MANIFEST, manifest)
    return path


def _save_int8(folder: Path, vectors: np.ndarray, codes: str, scales: str) -> list[str]:
    """Writes ``vectors`` as 8-bit codes and their scales (:class:`Int8Rows`) into ``folder``;
    returns the two file names."""
    rows = Int8Rows.quantize(vectors)
    np.save(folder / codes, rows.codes)
    np.save(folder / scales, rows.scales)
    return [codes, scales]


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the index at ``path`` (its size, model, files), checked for format."""
    manifest_path = Path(path) / MANIFEST
    manifest = read_manifest_file(manifest_path, "response index", IndexLoadError)
    if manifest.get("format") != FORMAT:
        raise IndexLoadError(f"{manifest_path}: not an index manifest of format {FORMAT}")
    return manifest


def load_index(
    path: str | Path,
    artifact: Artifact | None = None,
    verify: bool = True,
    precision: str = "float32",
) -> ResponseIndex:
    """Loads (memory-maps) the index at ``path``; with ``artifact``, checks it fits that model.

    Args:
        path: the index directory.
        artifact: the model that will query it.
        verify: check file checksums (reads every byte once more; off for very large indexes).
        precision: ``float32`` vectors, or the ``float16`` copy (half the memory).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    path = Path(path)
    manifest = read_manifest(path)
    if artifact is not None and manifest.get("model_checksum") != artifact.checksum:
        raise IndexLoadError(
            f"{path}: built by model {manifest.get('model_version')}, not by {artifact.version} "
            f"(re-run `chatbot index --model {artifact.path} ...`)"
        )
    listed = manifest.get("files", {})
    lexical_files = tuple(LEXICAL.values()) if LEXICAL["data"] in listed else ()
    if not lexical_files and LEXICAL_NPZ in listed:
        lexical_files = (LEXICAL_NPZ,)
    has_lexical = bool(lexical_files)
    if artifact is not None and artifact.config.lexical_weight > 0 and not has_lexical:
        raise IndexLoadError(
            f"{path}: has no lexical (TF-IDF) rows, which the hybrid model "
            f"{artifact.version} needs "
            f"(re-run `chatbot index --model {artifact.path} ...`)"
        )
    has_normalized = NORMALIZED in listed
    has_postings = all(name in listed for name in POSTINGS_FILES.values())
    has_ann = ANN_FILE in listed
    code_files = (VECTOR_CODES, VECTOR_SCALES) if VECTOR_CODES in listed else ()
    sentence_files = next((f for f in SENTENCE_LAYOUTS if set(f) <= listed.keys()), ())
    has_sentence = bool(sentence_files)
    has_sentence_ann = has_sentence and SENTENCE_ANN in listed
    if (
        artifact is not None
        and artifact.config.semantic_weight > 0
        and (not has_sentence or manifest.get("sentence_model") != artifact.sentence_checksum)
    ):
        raise IndexLoadError(
            f"{path}: has no sentence vectors by the sentence encoder of "
            f"{artifact.version}, which its semantic part needs "
            f"(re-run `chatbot index --model {artifact.path} ...`)"
        )
    vectors_file = VECTORS if precision == "float32" else VECTORS_F16
    optional = (
        lexical_files
        + (NORMALIZED,) * has_normalized
        + tuple(POSTINGS_FILES.values()) * has_postings
        + (ANN_FILE,) * has_ann
        + code_files
        + sentence_files
        + (SENTENCE_ANN,) * has_sentence_ann
    )
    check_files(path, listed, (vectors_file, TEXTS, *optional), IndexLoadError, verify)
    # Copy-on-write pages: shared until written (nothing writes them), and writable, which
    # TensorFlow needs to read them in place (chatbot.search).
    vectors = np.load(path / vectors_file, mmap_mode="c")
    texts = JsonlTexts(path / TEXTS)
    normalized = JsonlTexts(path / NORMALIZED) if has_normalized else None
    # Counted, not indexed: serving reads the normalised texts only for an edit of the index.
    n_normalized = normalized.line_count() if normalized is not None else len(texts)
    if n_normalized != len(texts):
        raise IndexLoadError(f"{path}: {n_normalized} normalised texts, {len(texts)} texts")
    if vectors.shape != (manifest["n"], manifest["dim"]) or len(texts) != manifest["n"]:
        raise IndexLoadError(
            f"{path}: holds {vectors.shape} vectors and {len(texts)} texts, manifest says "
            f"({manifest['n']}, {manifest['dim']})"
        )
    if artifact is not None and manifest["dim"] != artifact.config.encoding_dim:
        raise IndexLoadError(
            f"{path}: vectors of size {manifest['dim']}, "
            f"the model encodes {artifact.config.encoding_dim}"
        )
    lexical = _load_lexical(path, lexical_files, manifest, artifact)
    # Indexes written before postings were stored get theirs built by ResponseIndex.
    postings = Postings.load(path) if lexical is not None and has_postings else None
    if postings is not None and lexical is not None and postings.n_words != lexical.shape[1]:
        raise IndexLoadError(
            f"{path}: postings of {postings.n_words} words, TF-IDF rows of {lexical.shape[1]}"
        )
    n = int(manifest["n"])
    sentence = _load_int8_or_float(path, sentence_files, n)
    codes = _load_int8_or_float(path, code_files, n)
    if codes is not None and codes.shape != vectors.shape:
        raise IndexLoadError(f"{path}: {VECTOR_CODES} holds {codes.shape}, not {vectors.shape}")
    return ResponseIndex(
        vectors=vectors,
        texts=texts,
        manifest=manifest,
        lexical=lexical,
        normalized=normalized,
        postings=postings,
        ann_path=path / ANN_FILE if has_ann else None,
        sentence=sentence,
        sentence_ann_path=path / SENTENCE_ANN if has_sentence_ann else None,
        codes=codes if isinstance(codes, Int8Rows) else None,
    )


def _load_int8_or_float(path: Path, files: tuple[str, ...], n: int) -> Int8Rows | np.ndarray | None:
    """Rows stored in ``files``, memory-mapped: 8-bit codes and their scales, or (one file)
    a float layout; ``None`` for no files."""
    if not files:
        return None
    arrays = [np.load(path / name, mmap_mode="r") for name in files]
    if arrays[0].ndim != 2 or len(arrays[0]) != n:
        raise IndexLoadError(f"{path}: {files[0]} holds {arrays[0].shape}, not {n} rows")
    if len(arrays) == 1:
        return arrays[0]
    if arrays[1].shape != (n,):
        raise IndexLoadError(f"{path}: {files[1]} holds {arrays[1].shape}, not ({n},)")
    return Int8Rows(*arrays)


def _load_lexical(
    path: Path, files: tuple[str, ...], manifest: dict[str, Any], artifact: Artifact | None
) -> sp.csr_matrix | None:
    """The TF-IDF rows, memory-mapped (or, from the old ``lexical.npz``, read)."""
    if not files:
        return None
    n = int(manifest["n"])
    if files == (LEXICAL_NPZ,):
        rows = sp.load_npz(path / LEXICAL_NPZ).tocsr()
    else:
        data, indices, indptr = (np.load(path / LEXICAL[k], mmap_mode="r") for k in LEXICAL)
        if len(indptr) != n + 1 or len(data) != len(indices) or indptr[-1] != len(data):
            raise IndexLoadError(f"{path}: TF-IDF row arrays do not fit together or {n} rows")
        width = int(manifest.get("lexical_words", _width(indices)))
        rows = sp.csr_matrix((data, indices, indptr), shape=(n, width), copy=False)
    if rows.shape[0] != n:
        raise IndexLoadError(f"{path}: {rows.shape[0]} TF-IDF rows, not {n}")
    model = artifact.lexical if artifact is not None else None
    if model is not None and rows.shape[1] != len(model):
        raise IndexLoadError(
            f"{path}: TF-IDF rows of {rows.shape[1]} columns, the model's TF-IDF "
            f"vocabulary {len(model)} (re-run `chatbot index`)"
        )
    return rows


def _width(indices: np.ndarray) -> int:
    return int(indices.max()) + 1 if len(indices) else 0
