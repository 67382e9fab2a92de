"""Values and errors of the AMI link: messages, originate outcomes, exceptions."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from panoramisk.message import Message


class AmiMessage(Message):
    """One AMI message (event or response): a read-only, case-insensitive mapping header -> value.

    A header that occurs more than once (``Variable``, ``ChanVariable``, ``Output``) maps to a
    ``list[str]`` in arrival order. It subclasses panoramisk's ``Message`` because panoramisk's action
    bookkeeping (``Action.add_message``) reads messages through that class's attributes. Unlike
    ``Message`` it does not carry a fake ``content`` header.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        store: dict[str, tuple[str, str | list[str]]] = {}
        for key, value in pairs:
            lower = key.lower()
            if lower in store:
                first_key, old = store[lower]
                store[lower] = (first_key, [*old, value] if isinstance(old, list) else [old, value])
            else:
                store[lower] = (key, value)
        self._store = store

    def __setitem__(self, key: str, value: object) -> None:
        raise TypeError("AmiMessage is read-only")

    def __delitem__(self, key: str) -> None:
        raise TypeError("AmiMessage is read-only")


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


class OriginateFailure(enum.Enum):
    """Why an async Originate was not answered, from the ``Reason`` of ``OriginateResponse``."""

    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    FAILED = "failed"


# OriginateResponse's Reason is the last AST_CONTROL_* frame seen on the outgoing leg: 0 none,
# 1 HANGUP, 3 RINGING (rang until the timeout), 4 ANSWER, 5 BUSY, 8 CONGESTION.
ORIGINATE_ANSWERED = 4
_FAILURE_BY_REASON = {
    0: OriginateFailure.NO_ANSWER,
    1: OriginateFailure.NO_ANSWER,
    3: OriginateFailure.NO_ANSWER,
    5: OriginateFailure.BUSY,
    8: OriginateFailure.CONGESTION,
}


def originate_failure(reason_code: int | None) -> OriginateFailure:
    """Map an OriginateResponse ``Reason`` code to the small failure enum (unknown codes: FAILED)."""
    if reason_code is None:
        return OriginateFailure.FAILED
    return _FAILURE_BY_REASON.get(reason_code, OriginateFailure.FAILED)


@dataclass(frozen=True, slots=True)
class OriginateResult:
    """Outcome of an async Originate, built from Asterisk's ``OriginateResponse`` event."""

    success: bool
    reason: OriginateFailure | None
    reason_code: int | None
    channel: str | None
    uniqueid: str | None
    raw: AmiMessage
