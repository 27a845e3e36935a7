"""Privacy marks: what the store keeps about a person's erasure and consent, keyed by a salted hash.

The hash is keyed BLAKE2b with a random salt the store creates once (``EventStore.privacy_salt``):
without the salt an erased id cannot be confirmed by hashing guesses, so the tombstone list of
erased people is not itself a list of who they were. The store module imports this one, so it
imports nothing from ``recsmith.store``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

#: Bytes of the salted digest (32 hex characters): collisions are out of reach for any id count.
DIGEST_BYTES = 16


def subject_of(salt: bytes, user_id: str) -> str:
    """The salted hash that stands for ``user_id`` in marks, audit records and logs."""
    return hashlib.blake2b(user_id.encode(), key=salt, digest_size=DIGEST_BYTES).hexdigest()


@dataclass(frozen=True, slots=True)
class Mark:
    """One person's standing: erased (their events are refused for good and training skips
    them), and their consent. A person without a mark consented to both (the default)."""

    subject: str
    erased: bool = False
    personalization: bool = True
    tracking: bool = True
    updated_us: int = 0

    @property
    def refuses_events(self) -> bool:
        return self.erased or not self.tracking

    @property
    def withholds_personalization(self) -> bool:
        return self.erased or not self.personalization


#: Why a list is not personalised / an event refused, by cause (no id in them: they are stored
#: in dead letters and shown in responses).
ERASED_LIST = "this person was erased (DELETE /v1/users/{id}): their history is not used"
NO_PERSONALIZATION = "this person withdrew consent to personalization: lists are not personalised"
ERASED_EVENT = (
    "this person was erased (DELETE /v1/users/{id}): events naming them are refused and "
    "nothing about them is stored"
)
NO_TRACKING = (
    "this person withdrew consent to tracking (PUT /v1/users/{id}/consent): their events are "
    "refused and nothing about them is stored"
)


def list_reason(mark: Mark) -> str:
    """Why this person's list is the non-personalised one."""
    return ERASED_LIST if mark.erased else NO_PERSONALIZATION


def event_reason(mark: Mark) -> str:
    """Why this person's events are refused."""
    return ERASED_EVENT if mark.erased else NO_TRACKING
