"""Privacy: erase a person everywhere, export what is held about them, honour their consent and
keep personal data no longer than configured (issue #14).

Everything about a person that must outlive their data (they were erased; they opted out) is kept
as a *mark* keyed by a salted hash of their id (``marks``), never the id in clear: the store can
then refuse their events and training can skip them without keeping who they were.
"""
