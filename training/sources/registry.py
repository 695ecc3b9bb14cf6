"""Every raw dialogue source by name: its reader and where it lives in the shared data folder.

``chatbot data build --source NAME`` and the pipelines (:mod:`training.pipeline`) look sources
up here, so a source's reader and default path have one home.

Example:
    >>> SOURCES["irc"].default_path
    'ubuntu_irc/irc_disentangle_ubuntu_train_dev_test.tar.gz'
    >>> sorted(SOURCES)
    ['chitchat', 'irc', 'irc-extra', 'kaggle', 'liuzqt', 'pimlico', 'udc-raw']
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from training.dialogue import Dialogue
from training.errors import BadRowCounter
from training.sources.chitchat import read_chitchat
from training.sources.irc import read_irc
from training.sources.irc_extra import read_irc_extra
from training.sources.raw_udc import read_pimlico_json, read_udc_csv, read_udc_tsv_dir

Reader = Callable[..., Iterable[Dialogue]]  # (path or None, BadRowCounter) -> dialogues


@dataclass(frozen=True)
class Source:
    """A raw dialogue source.

    Attributes:
        name: what ``--source`` calls it.
        reader: ``(path, bad-row counter) -> dialogues``.
        default_path: its file relative to the shared data folder, or ``None`` when it has
            none there (then ``--input`` is required, except for the embedded corpus).
        about: what its input is, for ``--help``.
        embedded: needs no input file at all.
    """

    name: str
    reader: Reader
    default_path: str | None
    about: str
    embedded: bool = False

    def path_in(self, shared: Path) -> Path | None:
        """Its default input under the shared data folder ``shared``."""
        return shared / self.default_path if self.default_path else None

    def read(self, path: Path | None, bad: BadRowCounter | None = None) -> Iterator[Dialogue]:
        """Its dialogues, with ids prefixed by the source name (unique across sources)."""
        for d in self.reader(path, bad):
            yield Dialogue(f"{self.name}/{d.id}", d.date, d.turns)


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "chitchat",
            read_chitchat,
            None,
            "optional JSON file; default: the embedded corpus",
            embedded=True,
        ),
        Source("udc-raw", read_udc_tsv_dir, None, "UDC v1 raw folder tree, one TSV per dialogue"),
        Source(
            "kaggle",
            read_udc_csv,
            "udc/raw_dialogs/kaggle_dialogueText_first9999.csv",
            "Kaggle dialogueText.csv ([folder,]dialogueID,date,from,to,text)",
        ),
        Source(
            "liuzqt",
            read_udc_csv,
            "udc/raw_dialogs/liuzqt_raw_dialogs_50.csv",
            "raw UDC dialogues in the Kaggle CSV layout (liuzqt sample)",
        ),
        Source(
            "pimlico",
            read_pimlico_json,
            "udc/raw_dialogs/pimlico_dialogues_small.json",
            "JSON list of {dialogue_id, timestamp, text}",
        ),
        Source(
            "irc",
            read_irc,
            "ubuntu_irc/irc_disentangle_ubuntu_train_dev_test.tar.gz",
            "#ubuntu IRC disentanglement archive (.tar.gz) or its extracted folder",
        ),
        Source(
            "irc-extra",
            read_irc_extra,
            "ubuntu_irc/extra",
            "a folder of raw #ubuntu logs: [HH:MM] <nick> text, time/nick/text or "
            "time/from/to/text TSV",
        ),
    )
}
