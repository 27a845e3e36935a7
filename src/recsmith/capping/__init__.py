"""Cross-placement consistency: frequency capping and "not again in this page view".

Both read one source of truth, the decision log (``recsmith.decisions``): every list the
recommendations route serves is recorded with its unit (user or session), placement, items, time
and, when the caller sends one, its ``page_view_id``. Per request that is one indexed store query
(a range of ``decisions (unit, served_at)``, each list's items unpacked) plus a scan of this
process's not-yet-stored decisions (``DecisionLog.pending_for``: at most ``flush_interval_s`` of
traffic).

What is guaranteed, stated:

- **Page view, any worker or replica.** A list requested with a ``page_view_id`` is stored in the
  decision log *before its response is sent* (``DecisionLog.store_now``: one small write per such
  request, instead of the writer's batch). So a later request of the same page view, sent after
  an earlier one's response arrived, never repeats the earlier list's items, whichever server
  process answers it. Requests of one page view that are in flight *at the same time* have no
  order, and may overlap: serialise them in the client if that matters.
- **Frequency capping.** Exact within a process (its own pending decisions count at once); across
  processes a show counts once the showing process's writer stored it, at most
  ``decisions.flush_interval_s`` (≤ 1 s) later: a day's window does not notice that second.

Rules win: an item a rule pins (``type = "pin"``) is never capped nor withheld, and capping only
removes or moves items down, so every filter, blocklist and per-category cap still holds. Dropped
and page-view items are withheld from the pipeline's candidates (the same path as the user's own
items), so the re-ranker fills the list from what is left and an exploring pipeline never draws
them; demoted items sink below every other item of the re-ranked list, pinned slots kept
(``policy.demote``). An exploring pipeline drops where ``demote`` is asked: moving its drawn list
afterwards would make the propensities it logged false.

Nothing is capped for a person who withheld consent or was erased (no unit is recorded for
them), nor when the decision log is disabled (nothing to read).
"""
