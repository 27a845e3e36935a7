"""What co-occurrence and the sequential rules share: an item-to-item model whose matrix is an
*association* counted from the events, undirected (``cooccurrence``: items in one basket) or
directed (``transitions``: the items that followed one in a user's sequence).

Scoring, persistence and similar items are ``ItemToItem``'s; this base only names the matrix
``association_`` (the saved array's name too, so releases of either load as before) and lets each
model declare its own ``config`` type, which a subclass of the other could not without overriding
a config type it does not share."""

from __future__ import annotations

from scipy import sparse

from recsmith.models.item_to_item import ItemToItem


class Association(ItemToItem):
    """Score(u, j) = Σ_i x_ui · assoc(i → j); subclasses' ``fit`` counts ``association_``."""

    matrix_name = "association_"
    association_: sparse.csr_array
