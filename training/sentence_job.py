"""The replies' sentence vectors, encoded on a core the pipeline leaves idle.

An index's sentence vectors (:mod:`chatbot.sentence`) need neither the model nor its
training: only the pretrained encoder and the repository's texts. They are also the longest
part of a first build's index step (about 120 s for the default bot's 107,098 replies on two
cores), while several steps before it run on one core and leave the other idle: the data
build, the vocabulary pass, the hybrid weight, the LiteRT conversions.

:class:`SentenceVectorJob` uses that core. A process of its own converts the encoder as soon
as the pipeline starts (the semantic step then takes the converted file), and encodes the
replies, shortest first, as soon as the data build has written them (the data builds write
the repository first). It waits while the training runs (:meth:`SentenceVectorJob.paused`):
the training uses both cores, and a process beside it, even at the lowest priority, slowed
it by more than it saved (docs/results.md, stop 23).
The index step then takes the rest from the other end (:meth:`SentenceVectorJob.finish`):
both processes claim chunks until they meet, so no text is encoded twice. Every vector is
the one :meth:`chatbot.sentence.SentenceEncoder.encode` gives, from the same file.

A job that fails, or whose file or texts are not the index's, is set aside and the index
step encodes everything itself: the job can only save time.

Example::

    job = SentenceVectorJob.start(default_source(), tmp_dir)
    job.encode(data / "responses.jsonl", "tokenize")  # once the file is there
    build_data(...)
    with job.paused():
        train(...)
    add_semantic(model, source, valid, converted=job.converted())
    build_index(model, data / "responses.jsonl", index, sentence_job=job)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.synchronize import Event, Lock
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from chatbot.files import sha256_file
from chatbot.sentence import (
    SENTENCE_MODEL,
    SENTENCE_TOKENIZER,
    SentenceEncoder,
    shortest_first,
)

log = logging.getLogger(__name__)

# Texts a claim takes: small enough that a pause waits for less than a second, large enough
# that claiming costs nothing beside encoding.
CHUNK = 16
# The job gives way to the pipeline's own work whenever both want a core.
NICENESS = 10
# How long to wait for a message the job sends within seconds of its start (the conversion
# takes about 10 s, reading the texts a few more), before setting it aside.
MESSAGE_TIMEOUT_S = 600
# How often the job looks for the repository file while the data build writes it.
WAIT_S = 0.5
_VECTORS = "vectors.npy"
_ORDER = "order.npy"


def _digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _worker(source: str, folder: str, int8: bool, channels: dict[str, Any]) -> None:
    """The job's process: convert, then encode claimed chunks from the low end."""
    os.nice(NICENESS)
    inbox, outbox, bounds = channels["inbox"], channels["outbox"], channels["bounds"]
    lock: Lock = channels["lock"]
    running: Event = channels["running"]
    stop: Event = channels["stop"]
    from training.responses import read_responses
    from training.sentence import convert_sentence_encoder, sentence_info

    work = Path(folder)
    try:
        # In a process of its own: TensorFlow and the converter take about 2 GB, which this
        # process would otherwise hold until the index step; LiteRT alone takes a tenth.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as converter:
            args = (Path(source), work / SENTENCE_MODEL, int8)
            converter.submit(convert_sentence_encoder, *args).result()
        (work / SENTENCE_TOKENIZER).write_bytes((Path(source) / "tokenizer.json").read_bytes())
        outbox.put(("converted", None))
        request = inbox.get()
        if request is None:
            return
        responses, normalization = Path(request[0]), request[1]
        while not responses.exists():  # written atomically by the data build
            if stop.wait(WAIT_S):
                return
        from chatbot.text import Normalizer

        texts = read_responses(responses, "auto", Normalizer(normalization)).shown
        encoder = SentenceEncoder(work, sentence_info(Path(source), int8))
        ids = encoder.reply_ids(texts)
        order = shortest_first(ids)
        np.save(work / _ORDER, np.asarray(order, dtype=np.int64))  # the index step's too
        vectors = np.lib.format.open_memmap(
            work / _VECTORS, mode="w+", dtype=np.float32, shape=(len(texts), encoder.dim)
        )
        with lock:
            bounds[0], bounds[1] = 0, len(texts)
        outbox.put(("texts", (len(texts), _digest(texts))))
        run = encoder.runner()
        while not stop.is_set():
            running.wait()
            with lock:
                start, end = bounds[0], min(bounds[0] + CHUNK, bounds[1])
                bounds[0] = end
            if start >= end:
                break
            for k in range(start, end):
                vectors[order[k]] = encoder.encode_ids(run, ids[order[k]])
            with lock:
                bounds[2] += end - start
        vectors.flush()
        outbox.put(("done", None))
    except BaseException as exc:  # the pipeline must hear of it, whatever it is
        outbox.put(("failed", f"{type(exc).__name__}: {exc}"))


class SentenceVectorJob:
    """A background process that converts a sentence encoder and encodes a repository's
    replies with it; see the module's docstring.

    Args:
        process: the worker.
        work: its folder (the converted encoder, the vectors).
        channels: the queues, counters and events it shares with the worker.
    """

    def __init__(self, process: Any, work: Path, channels: dict[str, Any]) -> None:
        self._process = process
        self._work = work
        self._inbox, self._outbox = channels["inbox"], channels["outbox"]
        self._bounds, self._lock = channels["bounds"], channels["lock"]
        self._running, self._stop = channels["running"], channels["stop"]
        self._converted: bool | None = None
        self._texts: tuple[int, str] | None = None
        self._failed: str | None = None

    @classmethod
    def start(cls, source: Path, work: Path, int8: bool = True) -> SentenceVectorJob:
        """Starts converting ``source`` (:func:`training.sentence.convert_sentence_encoder`)
        into the folder ``work`` (created; the caller removes it)."""
        work.mkdir(parents=True, exist_ok=True)
        # spawn, not fork: the pipeline's process may hold TensorFlow's threads.
        context = multiprocessing.get_context("spawn")
        channels: dict[str, Any] = {
            "inbox": context.Queue(),
            "outbox": context.Queue(),
            "bounds": context.Array("q", 3),  # next from the low end, from the high end, done
            "lock": context.Lock(),
            "running": context.Event(),
            "stop": context.Event(),
        }
        channels["running"].set()
        process = context.Process(
            target=_worker,
            name="sentence-vectors",
            args=(str(source), str(work), int8, channels),
            daemon=False,  # it starts the converter's process; close() always stops it
        )
        process.start()
        log.info("sentence vectors: converting %s in the background (pid %d)", source, process.pid)
        return cls(process, work, channels)

    def encode(self, responses: Path, normalization: str) -> None:
        """Encodes the distinct replies of ``responses`` (as
        :func:`training.indexing.build_index` reads them) once the conversion is done and
        the file exists (the data build may still be writing it)."""
        self._inbox.put((str(responses), normalization))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Within the block the job takes no new chunk (the one it holds, it finishes)."""
        self._running.clear()
        try:
            yield
        finally:
            self._running.set()

    def _receive(self, wanted: str, timeout: float | None) -> Any:
        """The next message, which must be ``wanted``; ``None`` when the job failed."""
        if self._failed is not None:
            return None
        received = None
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            try:
                received = self._outbox.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._process.is_alive() and self._outbox.empty():
                    break
        kind, payload = received or (
            "failed",
            f"no {wanted!r} message from the job (exit code {self._process.exitcode})",
        )
        if kind == "failed":
            self._failed = payload
            log.warning("sentence vectors: the background job failed (%s)", payload)
            return None
        if kind != wanted:
            self._failed = f"expected {wanted!r}, got {kind!r}"
            return None
        return payload if payload is not None else True

    @property
    def background_done(self) -> int:
        """Replies encoded in the background so far."""
        with self._lock:
            return int(self._bounds[2])

    def converted(self) -> Path | None:
        """The converted encoder (waiting for it), or ``None`` when the job failed."""
        if self._converted is None:
            self._converted = self._receive("converted", MESSAGE_TIMEOUT_S) is not None
        return self._work / SENTENCE_MODEL if self._converted else None

    def finish(self, texts: Sequence[str], encoder: SentenceEncoder) -> np.ndarray | None:
        """The sentence vectors of ``texts``: what the job encoded, and the rest encoded here
        from the other end. ``None`` (nothing done here) when the job failed, or encoded
        other texts or with another file than ``encoder``'s."""
        converted = self.converted()
        if converted is None or sha256_file(converted) != sha256_file(encoder.model_file):
            return None
        if self._texts is None:
            self._texts = self._receive("texts", MESSAGE_TIMEOUT_S)
        if self._texts != (len(texts), _digest(texts)):
            return None
        self._running.set()
        order = np.load(self._work / _ORDER)  # the job's; only the claimed texts are tokenised
        vectors = np.empty((len(texts), encoder.dim), dtype=np.float32)
        mine: list[int] = []
        run = encoder.runner()
        with tqdm(total=len(texts), desc="sentences", unit="text") as bar:
            while True:
                with self._lock:
                    low, high, done = self._bounds[0], self._bounds[1], self._bounds[2]
                    start = max(high - CHUNK, low)
                    self._bounds[1] = start
                bar.n = done + len(mine)
                bar.refresh()
                if start >= high:
                    break
                claimed = order[start:high].tolist()
                claimed_ids = encoder.reply_ids([texts[i] for i in claimed])
                for i, ids in zip(claimed, claimed_ids, strict=True):
                    vectors[i] = encoder.encode_ids(run, ids)
                mine.extend(claimed)
        if self._receive("done", None) is None:
            return None
        theirs = np.load(self._work / _VECTORS, mmap_mode="r")
        taken = np.ones(len(texts), dtype=bool)
        taken[mine] = False
        vectors[taken] = theirs[taken]
        log.info("sentence vectors: %d of %d encoded in the background", taken.sum(), len(texts))
        return vectors

    def close(self) -> None:
        """Stops the process (if it still runs)."""
        self._stop.set()
        self._running.set()
        with contextlib.suppress(Exception):
            self._inbox.put(None)
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
