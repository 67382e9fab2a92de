"""Values and errors of the AMI link: messages, originate outcomes, exceptions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from panoramisk.message import Message

# Headers Asterisk repeats on purpose; every other header names one thing (Event, ActionID, Uniqueid...).
REPEATABLE_HEADERS = frozenset({"variable", "chanvariable", "destchanvariable", "output"})


class AmiMessage(Message):
    """One AMI message (event or response): a read-only, case-insensitive mapping header -> value.

    A repeatable header (``Variable``, ``ChanVariable``, ``Output``) that occurs more than once maps
    to a ``list[str]`` in arrival order. Any other header keeps its first value (a second ``Event``
    or ``ActionID`` would otherwise be a list that the code reading it, or panoramisk's ActionID
    lookup, chokes on); the names dropped so are in ``duplicates``. It subclasses panoramisk's
    ``Message`` because panoramisk's action bookkeeping (``Action.add_message``) reads messages
    through that class's attributes. Unlike ``Message`` it does not carry a fake ``content`` header.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        store: dict[str, tuple[str, str | list[str]]] = {}
        duplicates: list[str] = []
        for key, value in pairs:
            lower = key.lower()
            if lower in store:
                add_repeated(store, lower, key, value, duplicates)
            else:
                store[lower] = (key, value)
        self._store = store
        self.__dict__["duplicates"] = tuple(duplicates)

    @classmethod
    def from_store(
        cls, store: dict[str, tuple[str, str | list[str]]], duplicates: tuple[str, ...]
    ) -> AmiMessage:
        """A message from headers already keyed by lower-case name (the parser's fast path)."""
        message = cls.__new__(cls)
        message._store = store
        message.__dict__["duplicates"] = duplicates
        return message

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        # Mapping.get goes through __getitem__ and a KeyError for every absent header: the event
        # handlers ask for several per event.
        item = self._store.get(key.lower())
        return default if item is None else item[1]

    def __setitem__(self, key: str, value: object) -> None:
        raise TypeError("AmiMessage is read-only")

    def __delitem__(self, key: str) -> None:
        raise TypeError("AmiMessage is read-only")


def add_repeated(
    store: dict[str, tuple[str, str | list[str]]], lower: str, key: str, value: str, duplicates: list[str]
) -> None:
    """A header seen before: a list for a repeatable one, else the first value kept."""
    if lower in REPEATABLE_HEADERS:
        first_key, old = store[lower]
        store[lower] = (first_key, [*old, value] if isinstance(old, list) else [old, value])
    else:
        duplicates.append(key)


class AmiLinkError(Exception):
    """Base class of the AMI link's errors."""


class AmiNotConnected(AmiLinkError):
    """The link is not logged in, or the connection was lost before the action completed."""


class AmiTimeout(AmiLinkError, TimeoutError):
    """Asterisk did not answer an action in time."""


class AmiError(AmiLinkError):
    """Asterisk answered an action with an error response (``Response: Error``)."""

    def __init__(self, response: AmiMessage, detail: str | None = None) -> None:
        self.response = response
        super().__init__(detail or response.get("Message") or repr(response))


# OriginateResponse's Reason is the last AST_CONTROL_* frame seen on the outgoing leg (4: ANSWER).
# What a failure means is told by it together with the leg's Hangup cause: the one table of that is
# app/services/telephony.py.
ORIGINATE_ANSWERED = 4


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """Outcome of an async Originate, built from Asterisk's ``OriginateResponse`` event."""

    success: bool
    reason_code: int | None
    channel: str | None
    uniqueid: str | None
    raw: AmiMessage
