"""A model artifact: one directory with everything needed to use a trained dual encoder.

Layout::

    config.json         ModelConfig (hyperparameters and text normalisation)
    vocab.txt           one word a line; a word's id is its line number
    model.weights.h5    Keras weights
    saved_model/        TF SavedModel with serving signatures (TF Serving can load it)
    lexical.json        hybrid models only (config lexical_weight > 0): the fitted TF-IDF
                        model whose cosine is added to the neural score (chatbot.lexical);
                        the SavedModel signatures give the neural part alone
    calibration.json    optional: the confidence curves fitted on validation rows
                        (chatbot.calibration); written after training, weights unchanged
    manifest.json       format, versions, model version string, SHA-256 of every file

Loading checks the manifest before anything else, so a damaged, truncated or mismatched
artifact fails with a message that names the file at fault.
"""

from __future__ import annotations

import datetime as dt
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import keras
import tensorflow as tf

from chatbot.calibration import UNCALIBRATED, Calibration
from chatbot.config import ModelConfig
from chatbot.encoder import TextEncoder
from chatbot.errors import ArtifactError
from chatbot.files import atomic_dir, check_files, read_manifest_file, sha256_file, write_json
from chatbot.lexical import TfidfModel
from chatbot.model import DualEncoder, build_dual_encoder
from chatbot.scoring import Scorer
from chatbot.vocab import Vocab

FORMAT = 1
CONFIG = "config.json"
VOCAB = "vocab.txt"
WEIGHTS = "model.weights.h5"
SAVED_MODEL = "saved_model"
MANIFEST = "manifest.json"
LEXICAL = "lexical.json"
CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class Artifact:
    """A loaded model artifact."""

    path: Path
    config: ModelConfig
    vocab: Vocab
    model: DualEncoder
    manifest: dict[str, Any]
    lexical: TfidfModel | None = None
    calibration: Calibration = UNCALIBRATED

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def checksum(self) -> str:
        """SHA-256 of the weights file: what a response index is tied to."""
        return str(self.manifest["files"][WEIGHTS])

    def encoder(self, jit_compile: bool = True) -> TextEncoder:
        """The neural part: texts in, vectors out."""
        return TextEncoder(
            self.model, self.vocab, self.config, jit_compile=jit_compile, weights_fixed=True
        )

    def scorer(self, jit_compile: bool = True) -> Scorer:
        """The model's full score (neural, plus the TF-IDF part of a hybrid model)."""
        return Scorer(
            self.encoder(jit_compile),
            self.lexical,
            self.config.lexical_weight,
            echo_cosine=self.config.echo_cosine,
        )


def _export_saved_model(model: DualEncoder, path: Path) -> None:
    ids = tf.TensorSpec((None, None), tf.int32, name="token_ids")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "encode_contexts", lambda token_ids: {"vectors": model.encode_contexts(token_ids)}, [ids]
    )
    archive.add_endpoint(
        "encode_responses", lambda token_ids: {"vectors": model.encode_responses(token_ids)}, [ids]
    )
    archive.add_endpoint(
        "score",
        lambda context_ids, response_ids: {"logits": model((context_ids, response_ids))},
        [
            tf.TensorSpec((None, None), tf.int32, name="context_ids"),
            tf.TensorSpec((None, None), tf.int32, name="response_ids"),
        ],
    )
    archive.write_out(str(path), verbose=False)


def save_artifact(
    path: Path,
    model: DualEncoder,
    vocab: Vocab,
    config: ModelConfig,
    name: str = "model",
    extra: dict[str, Any] | None = None,
    lexical: TfidfModel | None = None,
) -> Path:
    """Writes a complete artifact to ``path`` (replacing it), atomically.

    Args:
        path: the artifact directory.
        model: trained dual encoder.
        vocab: its vocabulary.
        config: its configuration.
        name: a short name, the start of the version string.
        extra: anything else worth keeping in the manifest (training figures, data paths).
        lexical: the fitted TF-IDF model of a hybrid (required when
            ``config.lexical_weight > 0``).

    Returns:
        ``path``.
    """
    if config.lexical_weight > 0 and lexical is None:
        raise ValueError("config.lexical_weight > 0 needs the fitted lexical (TF-IDF) model")
    with atomic_dir(path) as tmp:
        config.save(tmp / CONFIG)
        if lexical is not None:
            lexical.save(tmp / LEXICAL)
        vocab.save(tmp / VOCAB)
        model.save_weights(tmp / WEIGHTS)
        _export_saved_model(model, tmp / SAVED_MODEL)
        files = {
            str(f.relative_to(tmp)): sha256_file(f) for f in sorted(tmp.rglob("*")) if f.is_file()
        }
        manifest = {
            "format": FORMAT,
            "name": name,
            "version": f"{name}-{files[WEIGHTS][:12]}",
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "versions": {
                "python": platform.python_version(),
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
            },
            "vocab_size": len(vocab),
            "files": files,
            **(extra or {}),
        }
        write_json(tmp / MANIFEST, manifest)
    return path


def update_config(path: Path, config: ModelConfig, extra: dict[str, Any] | None = None) -> Path:
    """Rewrites the artifact's ``config.json`` (and manifest) atomically, keeping its weights:
    for settings chosen after training that do not change the weights, so the version and
    the indexes built by the model stay valid.

    Raises:
        ArtifactError: the artifact is damaged, or ``config`` changes the network's shape.
    """
    read_manifest(path)  # checked before its config is read
    old = ModelConfig.load(path / CONFIG)
    shape = ("vocab_size", "embedding_dim", "hidden_size", "bidirectional", "shared_encoder")
    if any(getattr(old, name) != getattr(config, name) for name in shape):
        raise ArtifactError(f"{path}: a new config may not change the network's shape")
    return _rewrite_file(path, CONFIG, config.save, extra)


def write_calibration(
    path: Path, calibration: Calibration, extra: dict[str, Any] | None = None
) -> Path:
    """Adds (or replaces) the artifact's ``calibration.json``, atomically; the weights, the
    version and the indexes built by the model stay valid."""
    return _rewrite_file(path, CALIBRATION, calibration.save, extra)


def _rewrite_file(
    path: Path, name: str, write: Callable[[Path], None], extra: dict[str, Any] | None
) -> Path:
    manifest = read_manifest(path)
    with atomic_dir(path) as tmp:
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        write(tmp / name)
        files = dict(manifest["files"], **{name: sha256_file(tmp / name)})
        write_json(tmp / MANIFEST, {**manifest, **(extra or {}), "files": files})
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the artifact at ``path``, checked against the files it lists."""
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise ArtifactError(f"{path}: no model artifact here (not a directory)")
    manifest = read_manifest_file(manifest_path, "model artifact", ArtifactError)
    if manifest.get("format") != FORMAT:
        raise ArtifactError(
            f"{manifest_path}: artifact format {manifest.get('format')!r}, this code reads {FORMAT}"
        )
    files = manifest.get("files", {})
    check_files(path, files, files, ArtifactError)
    for required in (CONFIG, VOCAB, WEIGHTS):
        if required not in manifest.get("files", {}):
            raise ArtifactError(f"{manifest_path}: does not list {required}")
    return manifest


T = TypeVar("T")


def _load_listed(
    path: Path, manifest: dict[str, Any], name: str, load: Callable[[Path], T]
) -> T | None:
    """``load(path / name)`` when the manifest lists that optional file, else ``None``; a file
    that does not parse is an :class:`ArtifactError` naming it."""
    if name not in manifest["files"]:
        return None
    try:
        return load(path / name)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{path / name}: {exc}") from exc


def load_artifact(path: str | Path) -> Artifact:
    """Loads and checks the artifact at ``path``; :class:`ArtifactError` says what is wrong."""
    path = Path(path)
    manifest = read_manifest(path)
    try:
        config = ModelConfig.load(path / CONFIG)
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"{path / CONFIG}: {exc}") from exc
    try:
        vocab = Vocab.load(path / VOCAB)
    except ValueError as exc:
        raise ArtifactError(f"{path / VOCAB}: {exc}") from exc
    if len(vocab) != manifest.get("vocab_size"):
        raise ArtifactError(
            f"{path}: vocab.txt has {len(vocab)} words, manifest says {manifest.get('vocab_size')}"
        )
    model = build_dual_encoder(config, len(vocab), vocab.turn_marker_id)
    try:
        model.load_weights(path / WEIGHTS)
    except (ValueError, OSError) as exc:
        raise ArtifactError(
            f"{path / WEIGHTS}: does not fit config.json and vocab.txt ({exc})"
        ) from exc
    lexical = _load_listed(path, manifest, LEXICAL, TfidfModel.load)
    if lexical is None and config.lexical_weight > 0:
        raise ArtifactError(
            f"{path}: config.json has lexical_weight {config.lexical_weight} "
            f"but the manifest does not list {LEXICAL}"
        )
    calibration = _load_listed(path, manifest, CALIBRATION, Calibration.load)
    return Artifact(
        path=path,
        config=config,
        vocab=vocab,
        model=model,
        manifest=manifest,
        lexical=lexical,
        calibration=UNCALIBRATED if calibration is None else calibration,
    )


def load_scorer(path: str | Path, jit_compile: bool = True) -> Scorer:
    """The :class:`~chatbot.scoring.Scorer` of the artifact at ``path``."""
    return load_artifact(path).scorer(jit_compile=jit_compile)
