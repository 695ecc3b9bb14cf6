"""Streaming readers for the official Ubuntu Dialogue Corpus files, unchanged and at full size.

Three layouts are read, told apart by the first line (:func:`detect_layout`):

* ``train``: UDC v2 ``train.csv``, header ``Context,Utterance,Label``.
* ``eval``: UDC v2 ``valid.csv``/``test.csv``, header
  ``Context,Ground Truth Utterance,Distractor_0,...,Distractor_8``.
* ``v1``: the tab-separated text of later papers, ``label<TAB>turn1<TAB>...<TAB>response``, no
  header; test files hold one positive line followed by nine negatives with the same context.

Rows are yielded one at a time, so a 460 MB ``train.csv`` never sits in memory. A malformed row
raises :class:`~training.errors.DataError` naming the file and the physical line where the row
starts; with ``BadRowCounter(skip=True)`` it is skipped and counted instead.

Example::

    bad = BadRowCounter(skip=True)
    positives = sum(row.label for row in read_train_rows("train.csv", bad))
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from chatbot.text import EOT, EOU, join_turns, join_utterances
from training.errors import BadRowCounter, DataError
from training.raw_text import RawText, raw_text_path, read_raw_text
from training.sources import _common  # noqa: F401  (raises csv's field size limit)

Layout = Literal["train", "eval", "v1"]

TRAIN_HEADER = ("Context", "Utterance", "Label")
EVAL_HEADER_START = ("Context", "Ground Truth Utterance")
N_DISTRACTORS = 9  # per evaluation row, as in the official files
EVAL_HEADER = (*EVAL_HEADER_START, *(f"Distractor_{i}" for i in range(N_DISTRACTORS)))
V1_CANDIDATES = 1 + N_DISTRACTORS  # 1 positive + 9 negatives per test context

_LABELS = {"0": 0, "1": 1, "0.0": 0, "1.0": 1}


@dataclass(frozen=True, slots=True)
class TrainRow:
    """One training pair: label 1 when ``response`` truly followed ``context``, else 0."""

    context: str
    response: str
    label: int


@dataclass(frozen=True, slots=True)
class EvalRow:
    """One ranking test: the true ``response`` and the distractors it must beat."""

    context: str
    response: str
    distractors: tuple[str, ...]
    raw: RawText | None = None  # the row as people wrote it, when the data build kept it

    @property
    def candidates(self) -> tuple[str, ...]:
        """The true response first, then the distractors (the column order of score matrices)."""
        return (self.response, *self.distractors)


def detect_layout(path: str | Path) -> Layout:
    """The layout of a UDC file, from its first line.

    Args:
        path: a UDC v2 CSV file or a UDC v1 text file.

    Returns:
        ``"train"``, ``"eval"`` or ``"v1"``.

    Raises:
        DataError: the first line matches none of the layouts, or is not UTF-8.

    Example::

        detect_layout("train.csv")
        # -> 'train'
    """
    with open(path, "rb") as f:
        raw = f.readline()
    try:
        line = raw.decode("utf-8").removeprefix("\ufeff").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(path, 1, f"invalid UTF-8 in the header ({exc.reason})") from None
    if "\t" in line and line.split("\t", 1)[0].strip() in _LABELS:
        return "v1"
    header = tuple(h.strip() for h in next(csv.reader([line]), []))
    if header == TRAIN_HEADER:
        return "train"
    if _is_eval_header(header):
        return "eval"
    shown = line if len(line) <= 80 else line[:77] + "..."
    raise DataError(path, 1, f"unrecognised header {shown!r}: expected UDC v2 CSV or v1 text")


def _is_eval_header(header: tuple[str, ...]) -> bool:
    distractors = header[len(EVAL_HEADER_START) :]
    return (
        header[: len(EVAL_HEADER_START)] == EVAL_HEADER_START
        and len(distractors) > 0
        and all(name == f"Distractor_{i}" for i, name in enumerate(distractors))
    )


def read_train_rows(path: str | Path, bad: BadRowCounter | None = None) -> Iterator[TrainRow]:
    """Training pairs from a UDC v2 ``train.csv`` (or a v1 text file), streamed.

    Args:
        path: the file; its layout is detected from the first line.
        bad: decides whether malformed rows raise (default) or are skipped and counted.

    Returns:
        An iterator of :class:`TrainRow`.

    Example::

        sum(row.label for row in read_train_rows("train.csv"))
        # -> 500000
    """
    layout = detect_layout(path)
    if layout == "v1":
        yield from read_v1_train_rows(path, bad)
        return
    if layout != "train":
        raise DataError(path, 1, f"expected the train layout {','.join(TRAIN_HEADER)}")
    bad = bad or BadRowCounter()
    records = _csv_records(path, bad)
    next(records)  # the header
    for line, row in records:
        try:
            if len(row) != len(TRAIN_HEADER):
                raise _column_error(path, line, len(TRAIN_HEADER), len(row))
            context = _text(path, line, row, 0, "Context")
            response = _text(path, line, row, 1, "Utterance")
            yield TrainRow(context, response, _label(path, line, row[2]))
        except DataError as exc:
            bad.bad(exc)


def read_eval_rows(path: str | Path, bad: BadRowCounter | None = None) -> Iterator[EvalRow]:
    """Ranking tests from a UDC v2 ``valid.csv``/``test.csv`` (or a v1 test file), streamed.

    Args:
        path: the file; its layout is detected from the first line.
        bad: decides whether malformed rows raise (default) or are skipped and counted.

    Returns:
        An iterator of :class:`EvalRow`; every row of one file has the same number of
        distractors (nine in the official files).

    Example::

        len(next(read_eval_rows("test.csv")).distractors)
        # -> 9
    """
    layout = detect_layout(path)
    if layout == "v1":
        yield from read_v1_eval_rows(path, bad)
        return
    if layout != "eval":
        raise DataError(
            path, 1, "expected the evaluation layout Context,Ground Truth Utterance,..."
        )
    bad = bad or BadRowCounter()
    raw = read_raw_text(path)  # a data build's own rows have their raw text beside them
    records = _csv_records(path, bad)
    _, header = next(records)
    n = 0
    for n, (line, row) in enumerate(records, 1):
        try:
            if len(row) != len(header):
                raise _column_error(path, line, len(header), len(row))
            texts = tuple(_text(path, line, row, i, name) for i, name in enumerate(header))
            yield EvalRow(texts[0], texts[1], texts[2:], _raw_row(path, raw, n, len(texts) - 1))
        except DataError as exc:
            bad.bad(exc)
    if raw is not None and len(raw) != n:
        raise DataError(raw_text_path(path), None, f"{len(raw)} rows, but {path} has {n}")


def _raw_row(
    path: str | Path, raw: list[RawText] | None, n: int, candidates: int
) -> RawText | None:
    """The raw text of the ``n``-th row (from 1), checked against its candidate count."""
    if raw is None:
        return None
    if n > len(raw):
        raise DataError(raw_text_path(path), None, f"{len(raw)} rows, but {path} has more")
    if len(raw[n - 1].candidates) != candidates:
        raise DataError(
            raw_text_path(path), n, f"{len(raw[n - 1].candidates)} candidates, the row {candidates}"
        )
    return raw[n - 1]


def read_v1_train_rows(path: str | Path, bad: BadRowCounter | None = None) -> Iterator[TrainRow]:
    """Training pairs from UDC v1 text (``label<TAB>turn1<TAB>...<TAB>response``), streamed.

    The turns become a UDC-layout context (``t __eou__ __eot__ ...``) and the response one turn
    (``r __eou__``), the same layout as the v2 CSV files.

    Args:
        path: the v1 text file (no header).
        bad: decides whether malformed lines raise (default) or are skipped and counted.

    Returns:
        An iterator of :class:`TrainRow`.

    Example::

        next(read_v1_train_rows("train.txt")).context
        # -> 'hi __eou__ __eot__ hello __eou__ __eot__'
    """
    bad = bad or BadRowCounter()
    for item in _v1_records(path):
        if isinstance(item, DataError):
            bad.bad(item)
        else:
            yield item[1]


@dataclass
class _Group:
    """A v1 test group being collected: its positive line and the negatives so far."""

    line: int
    positive: TrainRow
    distractors: list[str] = field(default_factory=list)
    broken: bool = False  # a line of it was already reported; drop it silently


def read_v1_eval_rows(
    path: str | Path, bad: BadRowCounter | None = None, n_candidates: int = V1_CANDIDATES
) -> Iterator[EvalRow]:
    """Ranking tests from a UDC v1 test file: a positive line, then its negatives.

    Args:
        path: the v1 text file (no header).
        bad: decides whether malformed lines and groups raise (default) or are skipped and
            counted: each malformed line counts once, and the rest of its group is dropped
            uncounted; a well-formed group of the wrong size counts once.
        n_candidates: lines per group, the positive included.

    Returns:
        An iterator of :class:`EvalRow` with ``n_candidates - 1`` distractors each.

    Example::

        len(next(read_v1_eval_rows("test.txt")).distractors)
        # -> 9
    """
    bad = bad or BadRowCounter()
    group: _Group | None = None

    def finish(g: _Group | None) -> Iterator[EvalRow]:
        if g is None or g.broken:
            return
        if len(g.distractors) != n_candidates - 1:
            found = 1 + len(g.distractors)
            bad.bad(DataError(path, g.line, f"group has {found} lines, expected {n_candidates}"))
            return
        yield EvalRow(g.positive.context, g.positive.response, tuple(g.distractors))

    for item in _v1_records(path):
        if isinstance(item, DataError):
            if group is not None:
                group.broken = True
            bad.bad(item)
            continue
        line, row = item
        if row.label == 1:
            yield from finish(group)
            group = _Group(line, row)
        elif group is None:
            bad.bad(DataError(path, line, "negative line before any positive line"))
        elif row.context != group.positive.context:
            group.broken = True
            bad.bad(
                DataError(path, line, f"context differs from the positive at line {group.line}")
            )
        else:
            group.distractors.append(row.response)
    yield from finish(group)


def count_rows(path: str | Path) -> int:
    """The number of data rows (records after the header; lines for v1), for progress bars.

    Reads the whole file once with the csv parser, since fields may span lines.

    Example::

        count_rows("test.csv")
        # -> 18920
    """
    if detect_layout(path) == "v1":
        with open(path, "rb") as f:
            return sum(1 for raw in f if raw.strip())
    records = _csv_records(path, BadRowCounter(skip=True))
    return sum(1 for _ in records) - 1  # the header


def _v1_records(path: str | Path) -> Iterator[tuple[int, TrainRow] | DataError]:
    """``(line, row)`` for each v1 line, or the error that line has; blank lines are skipped."""
    lines = _DecodedLines(path)
    for text in lines:
        line = lines.line_num
        if line in lines.bad:
            yield DataError(path, line, lines.bad.pop(line))
            continue
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) < 3:
            yield DataError(
                path,
                line,
                f"expected label, turns and response, found {len(fields)} tab-separated fields",
            )
            continue
        try:
            label = _label(path, line, fields[0])
            turns = [_utterances(path, line, f, f"turn {i}") for i, f in enumerate(fields[1:-1], 1)]
            response = join_utterances(_utterances(path, line, fields[-1], "response"))
        except DataError as exc:
            yield exc
            continue
        yield line, TrainRow(join_turns(turns), response, label)


def _utterances(path: str | Path, line: int, turn: str, name: str) -> list[str]:
    # Some v1 releases keep ``__eou__`` between a turn's utterances; split on it so that
    # join_turns does not double the markers.
    utterances = [u.strip() for u in turn.replace(EOT, " ").split(EOU)]
    utterances = [u for u in utterances if u]
    if not utterances:
        raise DataError(path, line, f"empty {name}")
    return utterances


class _DecodedLines:
    """The lines of a file, each decoded strictly as UTF-8, counting physical lines.

    Decoding line by line, rather than through a text-mode file, is what lets an invalid byte
    be reported at its own line: a text-mode file decodes 8 KiB chunks ahead of the csv parser.
    A line that does not decode is passed on with replacement characters (so the csv parser
    keeps its place) and its line number goes into :attr:`bad`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.line_num = 0
        self.bad: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        # Binary lines end at b"\n", which never occurs inside a UTF-8 multi-byte sequence, and
        # "\r\n" stays in the line for the csv parser, like a text file opened with newline="".
        with open(self.path, "rb") as f:
            for raw in f:
                self.line_num += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    self.bad[self.line_num] = f"invalid UTF-8 at byte {exc.start} ({exc.reason})"
                    text = raw.decode("utf-8", errors="replace")
                yield text.removeprefix("\ufeff") if self.line_num == 1 else text


def _csv_records(path: str | Path, bad: BadRowCounter) -> Iterator[tuple[int, list[str]]]:
    """``(first physical line, fields)`` for each non-blank csv record, header included."""
    lines = _DecodedLines(path)
    reader = csv.reader(iter(lines))
    end = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            _pop_undecodable(lines, end)
            bad.bad(DataError(path, end, f"malformed CSV ({exc})"))
            continue
        start, end = end + 1, reader.line_num
        undecodable = _pop_undecodable(lines, end)
        if undecodable is not None:
            bad.bad(undecodable)
        elif row:
            yield start, row


def _pop_undecodable(lines: _DecodedLines, end: int) -> DataError | None:
    """The error for the first undecodable line up to ``end``, forgetting all of them."""
    inside = sorted(n for n in lines.bad if n <= end)
    reasons = [lines.bad.pop(n) for n in inside]
    return DataError(lines.path, inside[0], reasons[0]) if inside else None


def _column_error(path: str | Path, line: int, expected: int, found: int) -> DataError:
    return DataError(path, line, f"expected {expected} columns, found {found}")


def _text(path: str | Path, line: int, row: list[str], index: int, name: str) -> str:
    if not row[index].strip():
        raise DataError(path, line, f"empty {name}")
    return row[index]


def _label(path: str | Path, line: int, value: str) -> int:
    label = _LABELS.get(value.strip())
    if label is None:
        raise DataError(path, line, f"label {value!r} is not 0 or 1")
    return label


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    total: int | None = None,
    progress: bool | None = None,
) -> int:
    """Writes a header and ``rows`` as UTF-8 CSV with ``\\n`` line ends; returns the row count.

    ``progress``: show a progress bar (``None``: only when stderr is a terminal).

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "train.csv"
        >>> write_csv(path, TRAIN_HEADER, [("hi __eou__ __eot__", "hello __eou__", 1)])
        1
        >>> [row.label for row in read_train_rows(path)]
        [1]
    """
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        disable = None if progress is None else not progress
        for row in tqdm(rows, desc=path.stem, total=total, unit=" rows", disable=disable):
            writer.writerow(row)
            count += 1
    return count
