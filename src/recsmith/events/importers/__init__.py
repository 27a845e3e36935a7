"""Importers: files and public datasets into the event store (``recsmith import``).

``read_source(format, path)`` opens a source lazily; ``import_source(store, source, settings)``
validates and stores it chunk by chunk. See ``base`` for the contract every reader follows.
"""

from recsmith.events.importers.base import (
    FORMATS,
    ImportResult,
    ImportSource,
    RawChunk,
    SourceNotFound,
    import_source,
    read_source,
)

__all__ = [
    "FORMATS",
    "ImportResult",
    "ImportSource",
    "RawChunk",
    "SourceNotFound",
    "import_source",
    "read_source",
]
