"""A person's consent: to personalization (else they get the anonymous list) and to tracking
(else their events are refused and nothing about them is stored: ``privacy.screen``).

Kept as a privacy mark under their salted hash, like an erasure, so the server checks it from
memory; every change is audited (target: the hash). Consent is per person and has a default:
both granted, as before this existed. An erased person has no consent to change.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsmith.errors import ValidationError
from recsmith.governance.audit import record_audit
from recsmith.privacy.marks import Mark
from recsmith.privacy.view import view_of
from recsmith.store.base import ApiKey, EventStore


@dataclass(frozen=True, slots=True)
class Consent:
    personalization: bool = True
    tracking: bool = True


class ErasedPerson(ValidationError):
    """Consent asked of or set for someone who was erased (a 409 over HTTP)."""


def consent_of(store: EventStore, user_id: str) -> tuple[Consent, bool]:
    """The person's consent and whether they were erased, as the store has it now."""
    view = view_of(store)
    view.refresh()
    mark = view.mark_of(user_id)
    if mark is None:
        return Consent(), False
    return Consent(mark.personalization, mark.tracking), mark.erased


def set_consent(
    store: EventStore, user_id: str, consent: Consent, *, key: ApiKey | None = None
) -> Consent:
    """Store the person's consent; this process applies it at once, the others within a second."""
    before, erased = consent_of(store, user_id)
    view = view_of(store)
    if erased:
        raise ErasedPerson(
            "user_id",
            "this person was erased: there is no consent to record (and their events "
            "are refused for good)",
        )
    mark = Mark(view.subject(user_id), False, consent.personalization, consent.tracking)
    store.set_privacy_mark(mark)
    view.apply([mark])
    record_audit(
        store,
        action="consent",
        target=mark.subject,
        key=key,
        detail={
            "personalization": consent.personalization,
            "tracking": consent.tracking,
            "was": {"personalization": before.personalization, "tracking": before.tracking},
        },
    )
    return consent
