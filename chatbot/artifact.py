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
    encoder.tflite      optional: both encoders converted for LiteRT, and their batch sizes
    encoder_lite.json   and ``b`` (chatbot.lite, chatbot.lite_export); weights unchanged
    sentence.*          optional: the pretrained sentence encoder of the semantic part
                        (chatbot.sentence, training.sentence); required when config
                        semantic_weight > 0; with it, optionally, sentence_adapter.npy
                        (the context adapter, training.sentence_adapter)
    manifest.json       format, versions, model version string, SHA-256 of every file

Loading checks the manifest before anything else, so a damaged, truncated or mismatched
artifact fails with a message that names the file at fault. TensorFlow is imported only when
the Keras network is needed (:attr:`Artifact.model`): a worker serving on LiteRT never does.
"""

from __future__ import annotations

import datetime as dt
import platform
import shutil
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from chatbot.calibration import UNCALIBRATED, Calibration
from chatbot.config import ModelConfig
from chatbot.errors import ArtifactError
from chatbot.files import atomic_dir, check_files, read_manifest_file, sha256_file, write_json
from chatbot.lexical import TfidfModel
from chatbot.lite import LITE_INFO, LITE_MODEL, LiteEncoder, read_lite_info
from chatbot.scoring import Scorer
from chatbot.sentence import (
    SENTENCE_ADAPTER,
    SENTENCE_FILES,
    SENTENCE_INFO,
    SENTENCE_MODEL,
    SentenceEncoder,
    read_sentence_info,
)
from chatbot.vocab import Vocab

if TYPE_CHECKING:
    from chatbot.encoder import TextEncoder
    from chatbot.model import DualEncoder

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
    manifest: dict[str, Any]
    lexical: TfidfModel | None = None
    calibration: Calibration = UNCALIBRATED

    @cached_property
    def model(self) -> DualEncoder:
        """The Keras network with its weights, built on first use (it imports TensorFlow)."""
        return _load_network(self.path, self.config, self.vocab)

    @property
    def has_lite(self) -> bool:
        """Whether the artifact holds its encoders converted for LiteRT (``chatbot lite``)."""
        return _lists_lite(self.manifest)

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def checksum(self) -> str:
        """SHA-256 of the weights file: what a response index is tied to."""
        return str(self.manifest["files"][WEIGHTS])

    def encoder(self, jit_compile: bool = True) -> TextEncoder:
        """The neural part on TensorFlow: texts in, vectors out."""
        from chatbot.encoder import TextEncoder

        return TextEncoder(
            self.model, self.vocab, self.config, jit_compile=jit_compile, weights_fixed=True
        )

    def lite_encoder(self, threads: int = 1) -> LiteEncoder:
        """The neural part on LiteRT (no TensorFlow); :class:`ArtifactError` when the artifact
        has no converted encoder or it does not belong to these weights."""
        if not self.has_lite:
            raise ArtifactError(
                f"{self.path}: has no {LITE_MODEL} (add one: `chatbot lite --model {self.path}`)"
            )
        info = _load_listed(self.path, self.manifest, LITE_INFO, read_lite_info)
        assert info is not None  # listed: has_lite
        if info.get("weights") != self.checksum:
            raise ArtifactError(
                f"{self.path / LITE_INFO}: converted from other weights than {WEIGHTS}'s "
                f"(re-run `chatbot lite --model {self.path}`)"
            )
        if int(info["dim"]) != self.config.encoding_dim:
            raise ArtifactError(
                f"{self.path / LITE_INFO}: vectors of {info['dim']}, config.json's network "
                f"encodes {self.config.encoding_dim}"
            )
        try:
            return LiteEncoder(self.path / LITE_MODEL, info, self.vocab, self.config, threads)
        except (ValueError, RuntimeError) as exc:  # LiteRT's words for a file it cannot use
            raise ArtifactError(f"{self.path / LITE_MODEL}: {exc}") from exc

    @property
    def has_sentence(self) -> bool:
        """Whether the artifact holds a sentence encoder (the semantic part)."""
        return _lists_sentence(self.manifest)

    @property
    def sentence_checksum(self) -> str | None:
        """SHA-256 of the sentence encoder's file: what an index's sentence vectors are tied
        to (``None`` without one)."""
        return self.manifest["files"][SENTENCE_MODEL] if self.has_sentence else None

    @cached_property
    def sentence_encoder(self) -> SentenceEncoder | None:
        """The semantic part's sentence encoder on LiteRT, or ``None`` when there is none."""
        info = _load_listed(self.path, self.manifest, SENTENCE_INFO, read_sentence_info)
        if info is None or not self.has_sentence:
            return None
        adapter = _load_listed(self.path, self.manifest, SENTENCE_ADAPTER, np.load)
        try:
            return SentenceEncoder(self.path, info, adapter)
        except (ValueError, RuntimeError, OSError) as exc:  # LiteRT's or tokenizers' words
            raise ArtifactError(f"{self.path}: its sentence encoder does not load ({exc})") from exc

    def scorer(self, jit_compile: bool = True, lite_threads: int | None = None) -> Scorer:
        """The model's full score (neural, plus the TF-IDF part of a hybrid model and the
        semantic part when it has them); its neural part on TensorFlow, or on LiteRT with
        ``lite_threads`` threads."""
        encoder = (
            self.encoder(jit_compile) if lite_threads is None else self.lite_encoder(lite_threads)
        )
        return Scorer(
            encoder,
            self.lexical,
            self.config.lexical_weight,
            echo_cosine=self.config.echo_cosine,
            sentence=self.sentence_encoder,
            semantic_weight=self.config.semantic_weight,
            semantic_echo_cosine=self.config.semantic_echo_cosine,
        )


def _export_saved_model(model: DualEncoder, path: Path) -> None:
    import keras
    import tensorflow as tf

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
    import keras
    import tensorflow as tf

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
    return rewrite_files(path, {name: write}, extra)


def rewrite_files(
    path: Path,
    writers: Mapping[str, Callable[[Path], object]],
    extra: dict[str, Any] | None = None,
    remove: Collection[str] = (),
) -> Path:
    """Adds (or replaces) files of the artifact at ``path`` that do not change its weights,
    atomically: ``writers[name](file)`` writes each; the manifest lists them with their
    checksums, so the version and the indexes built by the model stay valid. Optional files
    named in ``remove`` go (one that is not there is no error)."""
    manifest = read_manifest(path)
    if set(remove) & {CONFIG, VOCAB, WEIGHTS, MANIFEST}:
        raise ValueError(f"cannot remove a required file of an artifact: {sorted(remove)}")
    with atomic_dir(path) as tmp:
        shutil.copytree(path, tmp, dirs_exist_ok=True)
        for name in remove:
            (tmp / name).unlink(missing_ok=True)
        for name, write in writers.items():
            write(tmp / name)
        written = {name: sha256_file(tmp / name) for name in writers}
        kept = {k: v for k, v in manifest["files"].items() if k not in remove}
        files = dict(kept, **written)
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


def lists_lite(path: str | Path) -> bool:
    """Whether the manifest of the artifact at ``path`` lists LiteRT encoders; read without
    checking any file (loading checks them), ``False`` when there is no readable manifest."""
    try:
        manifest = read_manifest_file(Path(path) / MANIFEST, "model artifact", ArtifactError)
    except ArtifactError:
        return False
    return _lists_lite(manifest)


def _lists_sentence(manifest: dict[str, Any]) -> bool:
    return all(name in manifest.get("files", {}) for name in SENTENCE_FILES)


def _lists_lite(manifest: dict[str, Any]) -> bool:
    files = manifest.get("files", {})
    return LITE_MODEL in files and LITE_INFO in files


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


def load_artifact(path: str | Path, network: bool = True) -> Artifact:
    """Loads and checks the artifact at ``path``; :class:`ArtifactError` says what is wrong.

    ``network=False`` leaves the Keras network (and TensorFlow) until :attr:`Artifact.model`
    is first read: for serving on LiteRT. Every file is checked against the manifest either
    way; whether the weights fit the config is then checked when they are loaded.
    """
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
    lexical = _load_listed(path, manifest, LEXICAL, TfidfModel.load)
    if lexical is None and config.lexical_weight > 0:
        raise ArtifactError(
            f"{path}: config.json has lexical_weight {config.lexical_weight} "
            f"but the manifest does not list {LEXICAL}"
        )
    if config.semantic_weight > 0 and not _lists_sentence(manifest):
        raise ArtifactError(
            f"{path}: config.json has semantic_weight {config.semantic_weight} "
            f"but the manifest does not list {', '.join(SENTENCE_FILES)}"
        )
    calibration = _load_listed(path, manifest, CALIBRATION, Calibration.load)
    artifact = Artifact(
        path=path,
        config=config,
        vocab=vocab,
        manifest=manifest,
        lexical=lexical,
        calibration=UNCALIBRATED if calibration is None else calibration,
    )
    if network:
        artifact.model  # noqa: B018 (loads the weights now: their errors belong to loading)
    return artifact


def _load_network(path: Path, config: ModelConfig, vocab: Vocab) -> DualEncoder:
    from chatbot.model import build_dual_encoder

    model = build_dual_encoder(config, len(vocab), vocab.turn_marker_id)
    try:
        model.load_weights(path / WEIGHTS)
    except (ValueError, OSError) as exc:
        raise ArtifactError(
            f"{path / WEIGHTS}: does not fit config.json and vocab.txt ({exc})"
        ) from exc
    return model


def load_scorer(path: str | Path, jit_compile: bool = True) -> Scorer:
    """The :class:`~chatbot.scoring.Scorer` of the artifact at ``path``."""
    return load_artifact(path).scorer(jit_compile=jit_compile)
