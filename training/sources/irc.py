"""Reader for raw #ubuntu IRC logs with reply-to annotations (Kummerfeld et al., ACL 2019).

Input: the ``irc_disentangle_ubuntu_train_dev_test.tar.gz`` archive (read in place) or a folder
holding its extracted files. Each ``DATE*.ascii.txt`` log has one line per event:
``[HH:MM] <nick> text`` messages; ``=== system`` lines and other events (``[HH:MM]  * nick action``,
``[HH:MM] -nick:#ubuntu- notice``) are ignored.
Its ``DATE*.annotation.txt`` holds ``parent child -`` links between 0-based line numbers, a
self-link starting a thread. Each file's first 1,000 lines carry no links.

Two-party dialogues, as UDC has, are recovered in two ways:

* Annotated lines (:func:`gold_dialogues`): gold threads often hold several people (one asks,
  two answer), so a thread is split into **pairwise** dialogues rather than cut down to its two
  busiest speakers: for each pair of speakers linked by a reply, the dialogue is the pair's
  messages connected through links between the two of them (a speaker's self-links count, so
  a question and its follow-up stay together). This keeps every helper's exchange with the
  asker, each beginning with the question, and never puts a third person's words in a turn.
* Unannotated lines (:func:`addressed_dialogues`): UDC's own heuristic. A message starting
  ``nick:`` or ``nick,`` with a nick that spoke in the last ``RECENT_MINUTES`` is addressed to
  that nick. Addressed messages between the same two people chain into one dialogue while no
  gap exceeds ``GAP_MINUTES``; a new dialogue starts with the addressee's last unaddressed
  message (usually the question) when recent enough; a speaker's unaddressed messages continue
  their latest open dialogue.

The address prefix (``nick:``) is removed from a message's text, as in the UDC dialogues. Every
dialogue keeps only 3+ turns; its date is the log file's date.

Example::

    dialogues = read_irc("irc_disentangle_ubuntu_train_dev_test.tar.gz")
"""

from __future__ import annotations

import re
import tarfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from training.dialogue import Dialogue, group_turns
from training.errors import BadRowCounter, DataError
from training.sources._common import MIN_TURNS, bad_utf8, parse_date

RECENT_MINUTES = 60  # a "nick:" prefix addresses someone only if they spoke this recently
GAP_MINUTES = 10  # a longer silence between two people ends their addressed dialogue

LOG_SUFFIX = ".ascii.txt"
ANNOTATION_SUFFIX = ".annotation.txt"

_MESSAGE = re.compile(r"\[(\d\d):(\d\d)\] <([^>\s]+)> ?(.*)")
# System lines and timestamped events other than messages: /me actions, notices, relays.
_IGNORED = re.compile(r"===|\[\d\d:\d\d\] +[^<\s]")
_ADDRESS = re.compile(r"\s*([^\s:,]+)\s*[:,]\s*(.*)")
_LINK = re.compile(r"(\d+) (\d+) -")


@dataclass(frozen=True)
class Message:
    """One chat message of a log: ``index`` is its 0-based line, ``minute`` never decreases."""

    index: int
    minute: int
    nick: str
    text: str
    addressee: str | None = None


@dataclass(frozen=True)
class LogFile:
    """One log: ``name`` (``split/stem``, used in ids), ``path`` (for errors) and its bytes."""

    name: str
    path: str
    log: bytes
    annotation: bytes | None  # None: no annotation file, the whole log is unannotated


def read_irc(source: str | Path, bad: BadRowCounter | None = None) -> Iterator[Dialogue]:
    """Two-party dialogues from every log of the archive or folder ``source``.

    Args:
        source: the ``.tar.gz`` archive, or a folder searched for ``*.ascii.txt`` logs.
        bad: skips and counts malformed lines when its ``skip`` is on; raises otherwise.

    Returns:
        Dialogues, log by log, with ids ``<split>/<log>:gold:<n>`` or ``...:addr:<n>``.

    Example::

        next(read_irc("irc.tar.gz")).id
        # -> 'train/2004-12-25.train-c:addr:0'
    """
    bad = bad or BadRowCounter()
    source = Path(source)
    for log in _folder_logs(source) if source.is_dir() else _tar_logs(source):
        yield from log_dialogues(log, bad)


def _folder_logs(folder: Path) -> Iterator[LogFile]:
    for path in sorted(folder.rglob(f"*{LOG_SUFFIX}")):
        links = path.with_name(path.name.removesuffix(LOG_SUFFIX) + ANNOTATION_SUFFIX)
        annotation = links.read_bytes() if links.exists() else None
        name = _log_name(path.relative_to(folder).as_posix())
        yield LogFile(name, str(path), path.read_bytes(), annotation)


def _tar_logs(archive_path: Path) -> Iterator[LogFile]:
    # Read as a stream; a log and its annotation may come in either order, so hold the first
    # of the two until its partner arrives (a log is well under a megabyte).
    logs: dict[str, bytes] = {}
    links: dict[str, bytes] = {}
    with tarfile.open(archive_path, "r|*") as archive:
        for member in archive:
            is_log = member.name.endswith(LOG_SUFFIX)
            if not member.isfile() or not (is_log or member.name.endswith(ANNOTATION_SUFFIX)):
                continue
            name = _log_name(member.name)
            (logs if is_log else links)[name] = archive.extractfile(member).read()  # type: ignore[union-attr]
            if name in logs and name in links:
                yield LogFile(
                    name, f"{archive_path}:{name}{LOG_SUFFIX}", logs.pop(name), links.pop(name)
                )
    for name, data in logs.items():
        yield LogFile(name, f"{archive_path}:{name}{LOG_SUFFIX}", data, None)


def _log_name(path: str) -> str:
    """``split/stem`` of a log or annotation path, e.g. ``train/2004-12-25.train-c``."""
    parts = PurePosixPath(path).parts[-2:]
    stem = parts[-1].removesuffix(LOG_SUFFIX).removesuffix(ANNOTATION_SUFFIX)
    return "/".join((*parts[:-1], stem))


def log_dialogues(log: LogFile, bad: BadRowCounter) -> list[Dialogue]:
    """Dialogues of one log: gold ones from annotated lines, heuristic ones before them.

    Args:
        log: the log; its file name must start with a ``YYYY-MM-DD`` date.
        bad: skips and counts malformed lines when its ``skip`` is on; raises otherwise.

    Returns:
        The dialogues, gold ones first, each with 3+ turns.

    Example:
        >>> log_dialogues(LogFile("x/2010-01-01", "x", b"[10:00] <a> hi", None), BadRowCounter())
        []
    """
    try:
        date = parse_date(PurePosixPath(log.name).name[:10])
    except ValueError:
        raise DataError(log.path, None, "log name does not start with a YYYY-MM-DD date") from None
    messages = parse_log(log.path, log.log, bad)
    links = [] if log.annotation is None else parse_links(log.path, log.annotation, bad)
    first_annotated = min((child for _, child in links), default=None)
    unannotated = [m for i, m in messages.items() if first_annotated is None or i < first_annotated]
    chains = {"gold": gold_dialogues(messages, links), "addr": addressed_dialogues(unannotated)}
    dialogues = []
    for kind, groups in chains.items():
        for n, group in enumerate(groups):
            turns = group_turns([(m.nick, m.text) for m in group])
            if len(turns) >= MIN_TURNS:
                dialogues.append(Dialogue(f"{log.name}:{kind}:{n}", date, turns))
    return dialogues


def parse_log(path: str, data: bytes, bad: BadRowCounter) -> dict[int, Message]:
    """The chat messages of a log by line index, addressees found, ``/me`` and system lines out.

    Example:
        >>> parse_log("l", b"[10:00] <a> hi\\n[10:01] <b> a: yo", BadRowCounter())[1].addressee
        'a'
    """
    messages: dict[int, Message] = {}
    seen: dict[str, int] = {}  # lower-cased nick -> minute last spoken
    clock = _Clock()
    for index, raw in enumerate(data.decode("utf-8", "surrogateescape").splitlines()):
        match = _MESSAGE.fullmatch(raw)
        if match is None:
            if raw.strip() and not _IGNORED.match(raw):
                bad.bad(DataError(path, index + 1, "not an IRC message, event or system line"))
            continue
        if bad_utf8([raw]):
            bad.bad(DataError(path, index + 1, "invalid UTF-8"))
            continue
        hours, minutes, nick, text = match.groups()
        minute = clock.minute(int(hours) * 60 + int(minutes))
        addressee, text = _address(text, nick, seen, minute)
        messages[index] = Message(index, minute, nick, text, addressee)
        seen[nick.lower()] = minute
    return messages


class _Clock:
    """Turns ``HH:MM`` stamps into minutes that keep increasing across midnight."""

    def __init__(self) -> None:
        self.day = 0
        self.last = 0

    def minute(self, of_day: int) -> int:
        if of_day < self.last - 12 * 60:  # a big step back in time is the next day
            self.day += 1
        self.last = of_day
        return self.day * 24 * 60 + of_day


def _address(text: str, nick: str, seen: dict[str, int], minute: int) -> tuple[str | None, str]:
    """``(addressee, text without the prefix)``, or ``(None, text)`` when not addressed."""
    match = _ADDRESS.match(text)
    if match is None:
        return None, text
    target = match.group(1).lower()
    if target == nick.lower() or minute - seen.get(target, -(10**9)) > RECENT_MINUTES:
        return None, text
    return target, match.group(2)


def parse_links(path: str, data: bytes, bad: BadRowCounter) -> list[tuple[int, int]]:
    """``(parent, child)`` line pairs of an annotation file, self-links included.

    Example:
        >>> parse_links("a", b"1000 1000 -\\n1000 1001 -", BadRowCounter())
        [(1000, 1000), (1000, 1001)]
    """
    links = []
    for index, raw in enumerate(data.decode("utf-8", "replace").splitlines()):
        match = _LINK.fullmatch(raw.strip())
        if match is None:
            if raw.strip():
                where = path.removesuffix(LOG_SUFFIX) + ANNOTATION_SUFFIX
                bad.bad(DataError(where, index + 1, "expected 'parent child -'"))
            continue
        links.append((int(match.group(1)), int(match.group(2))))
    return links


def gold_dialogues(
    messages: dict[int, Message], links: Iterable[tuple[int, int]]
) -> list[list[Message]]:
    """Pairwise dialogues from reply-to links (see the module docstring for why pairwise).

    Links touching a line that is not a chat message (a join, a ``/me``) are ignored.

    Example:
        >>> m = {i: Message(i, i, n, "x") for i, n in enumerate("abab")}
        >>> [[x.index for x in d] for d in gold_dialogues(m, [(0, 1), (1, 2), (2, 3)])]
        [[0, 1, 2, 3]]
    """
    cross: dict[frozenset[str], list[tuple[int, int]]] = defaultdict(list)
    own: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for parent, child in links:
        if parent == child or parent not in messages or child not in messages:
            continue
        pair = frozenset((messages[parent].nick, messages[child].nick))
        (cross[pair] if len(pair) == 2 else own[messages[child].nick]).append((parent, child))
    dialogues = []
    for pair in sorted(cross, key=sorted):
        pair_links = [link for nick in sorted(pair) for link in own[nick]]
        for component in _components(cross[pair], pair_links):
            dialogues.append([messages[i] for i in component])
    return sorted(dialogues, key=lambda d: (d[0].index, d[-1].index))


def _components(seeds: list[tuple[int, int]], extra: list[tuple[int, int]]) -> list[list[int]]:
    """Connected line sets over ``seeds + extra`` links that hold at least one seed link."""
    root: dict[int, int] = {}

    def find(i: int) -> int:
        root.setdefault(i, i)
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for a, b in seeds + extra:
        root[find(a)] = find(b)
    seeded = {find(a) for a, _ in seeds}
    groups: dict[int, list[int]] = defaultdict(list)
    for i in sorted(root):
        if find(i) in seeded:
            groups[find(i)].append(i)
    return list(groups.values())


def addressed_dialogues(messages: list[Message]) -> list[list[Message]]:
    """Two-party dialogues by UDC's ``nick:`` heuristic over messages in line order.

    Example:
        >>> m = [Message(0, 0, "a", "q?"), Message(1, 1, "b", "x", "a"), Message(2, 2, "a", "ok")]
        >>> [[x.index for x in d] for d in addressed_dialogues(m)]
        [[0, 1, 2]]
    """
    finished: list[list[Message]] = []
    open_: dict[frozenset[str], list[Message]] = {}
    latest: dict[str, frozenset[str]] = {}  # nick -> the pair it spoke in last
    question: dict[str, Message] = {}  # nick -> its last unaddressed, unattached message
    for m in messages:
        nick = m.nick.lower()
        if m.addressee is None:
            dialogue = open_.get(latest.get(nick, frozenset()))
            if dialogue and m.minute - dialogue[-1].minute <= GAP_MINUTES:
                dialogue.append(m)
            else:
                question[nick] = m
            continue
        pair = frozenset((nick, m.addressee))
        dialogue = open_.get(pair)
        if dialogue is None or m.minute - dialogue[-1].minute > GAP_MINUTES:
            if dialogue:
                finished.append(dialogue)
            asked = question.pop(m.addressee, None)
            dialogue = open_[pair] = (
                [asked] if asked and m.minute - asked.minute <= GAP_MINUTES else []
            )
        dialogue.append(m)
        latest[nick] = latest[m.addressee] = pair
    return sorted(finished + list(open_.values()), key=lambda d: (d[0].index, d[-1].index))
