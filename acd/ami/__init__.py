"""The AMI link: a supervised connection to Asterisk's Manager Interface, built on panoramisk."""

from acd.ami.link import AmiLink, backoff_delay
from acd.ami.model import (
    AmiError,
    AmiLinkError,
    AmiMessage,
    AmiNotConnected,
    AmiTimeout,
    OriginateResult,
)

__all__ = [
    "AmiError",
    "AmiLink",
    "AmiLinkError",
    "AmiMessage",
    "AmiNotConnected",
    "AmiTimeout",
    "OriginateResult",
    "backoff_delay",
]
