"""The repository's sentence vectors, encoded in the background while the data is built and
the model trains.

Encoding every reply with the sentence encoder is the longest part of a first build after
the training itself (the default bot's 107,098 replies: about 120 s on 2 cores). It needs
only the data build's repository file and the pretrained encoder, not the trained model.
Meanwhile the first steps leave CPU idle: the data build and the vocabulary pass run on one
core, the training on about 1.5 of 2. A :class:`ReplyEncoding` started with the data step
converts the encoder, waits for the repository file (the data builds write it first) and
encodes its replies, in a process that Linux runs only on otherwise idle CPU time
(SCHED_IDLE). The semantic step then copies its conversion, and the index step takes its
vectors, waiting for what is left (at full speed: nothing else runs then).

What it hands over is checked: the vectors are used only for exactly the texts the index
step read and the flatbuffer the artifact holds; otherwise, or if the process failed, the
index step encodes the replies itself.

Example::

    job = ReplyEncoding(source, data / "responses.jsonl", "tokenize", out / "sentence.work")
    job.start()
    ...  # train
    add_semantic(model, source, valid_sets, converted=job.converted())
    vectors = job.vectors(texts, model / "sentence.tflite")  # None: encode them here
    job.close()
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from chatbot.files import sha256_file
from chatbot.sentence import SENTENCE_INFO, SENTENCE_MODEL

log = logging.getLogger(__name__)

VECTORS = "replies.npy"
# Written last, beside VECTORS: the texts' digest and the flatbuffer's checksum they are for.
DONE = "replies.json"
FAILED = "failed.txt"
# Replies a chunk: the progress counter moves once a chunk.
CHUNK = 2048
# How often a waiting caller looks for the process' output.
POLL_S = 0.2


def texts_digest(texts: Sequence[str]) -> str:
    """A checksum of a list of texts (each length-prefixed, so no two lists share one).

    Example:
        >>> texts_digest(["a", "b"]) == texts_digest(["ab"])
        False
    """
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _lowest_priority() -> None:
    """Runs this process only on CPU time nothing else wants: Linux's SCHED_IDLE (a waking
    training thread preempts it at once; nice 19 alone cost the training a fifth of its
    speed), else nice 19."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        os.nice(19)


def _encode_replies(
    source: Path, responses: Path, normalization: str, folder: Path, done: Any, parent: int
) -> None:
    """The background process: convert, wait for the repository file, then encode it chunk
    by chunk."""
    _lowest_priority()
    try:
        from chatbot.sentence import SentenceEncoder, read_sentence_info
        from chatbot.text import Normalizer
        from training.responses import read_responses
        from training.sentence import write_sentence_files

        write_sentence_files(folder, source)
        while not responses.exists():  # the data build writes it (atomically)
            if os.getppid() != parent:
                return  # the pipeline is gone
            time.sleep(POLL_S)
        texts = read_responses(responses, "auto", Normalizer(normalization)).shown
        encoder = SentenceEncoder(folder, read_sentence_info(folder / SENTENCE_INFO))
        vectors = np.empty((len(texts), encoder.dim), dtype=np.float32)
        for start in range(0, len(texts), CHUNK):
            vectors[start : start + CHUNK] = encoder.encode(texts[start : start + CHUNK])
            done.value = min(start + CHUNK, len(texts))
        np.save(folder / VECTORS, vectors)
        stamp = {
            "texts": texts_digest(texts),
            "count": len(texts),
            "model_sha256": sha256_file(folder / SENTENCE_MODEL),
        }
        (folder / f"{DONE}.part").write_text(json.dumps(stamp) + "\n")
        (folder / f"{DONE}.part").replace(folder / DONE)
    except BaseException:
        (folder / FAILED).write_text(traceback.format_exc())
        raise


class ReplyEncoding:
    """A background process that converts the sentence encoder at ``source`` into
    ``folder`` and encodes the distinct replies of the repository file ``responses``
    (read as :func:`training.responses.read_responses` reads it, with ``normalization``),
    once that file exists: it may be started before the data build writes it."""

    def __init__(self, source: Path, responses: Path, normalization: str, folder: Path) -> None:
        self.source, self.responses, self.folder = source, responses, folder
        self.normalization = normalization
        # spawn: a fork would copy the parent's TensorFlow threads and locks.
        context = multiprocessing.get_context("spawn")
        self._done = context.Value("q", 0)
        self._process = context.Process(
            target=_encode_replies,
            args=(source, responses, normalization, folder, self._done, os.getpid()),
            name="reply-sentences",
            daemon=True,
        )

    def start(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self._process.start()
        log.info("encoding the replies' sentence vectors in the background (lowest priority)")

    def _wait_for(self, name: str, progress: bool = False) -> bool:
        """Waits until ``folder/name`` exists (``True``) or the process has ended without it
        (``False``, with the reason logged)."""
        bar = tqdm(desc="sentences (background)", unit=" replies", disable=not progress)
        try:
            while not (self.folder / name).exists():
                if not self._process.is_alive() and not (self.folder / name).exists():
                    failed = self.folder / FAILED
                    reason = (
                        failed.read_text().strip().splitlines()[-1]
                        if failed.exists()
                        else (f"exit status {self._process.exitcode}")
                    )
                    log.warning("background sentence encoding failed (%s)", reason)
                    return False
                bar.update(self._done.value - bar.n)
                time.sleep(POLL_S)
            bar.update(self._done.value - bar.n)
            return True
        finally:
            bar.close()

    def converted(self) -> Path | None:
        """The folder with the converted encoder's files (waiting for them), or ``None``
        when the process failed before writing them."""
        return self.folder if self._wait_for(SENTENCE_INFO) else None

    def vectors(self, texts: Sequence[str], model_file: Path) -> np.ndarray | None:
        """The sentence vectors of ``texts`` by the flatbuffer ``model_file`` (waiting for
        them, with progress), or ``None`` when the process failed or encoded other texts
        or with another flatbuffer."""
        if not self._wait_for(DONE, progress=True):
            return None
        stamp = json.loads((self.folder / DONE).read_text())
        if stamp["count"] != len(texts) or stamp["texts"] != texts_digest(texts):
            log.warning("background sentence vectors are of other replies: not used")
            return None
        if stamp["model_sha256"] != sha256_file(model_file):
            log.warning("background sentence vectors are of another encoder: not used")
            return None
        return np.load(self.folder / VECTORS)

    def close(self) -> None:
        """Stops the process if it still runs and removes its folder."""
        if self._process.is_alive():
            self._process.terminate()
        if self._process.pid is not None:
            self._process.join()
        shutil.rmtree(self.folder, ignore_errors=True)
