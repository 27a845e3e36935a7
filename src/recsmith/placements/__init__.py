"""A placement's own list length and release: ``[placements.NAME] k`` and ``release`` in the
pipeline file (``pipeline.config.PlacementConfig``), beside its own re-ranking.

``k`` is the list length of a request for that placement that gives none (an explicit ``?k=``
wins). ``release`` names a release of the server's model registry that answers that placement
instead of the deployed one: loaded and checked as ``deploy`` checks a release, with every other
server process following the registry (``sync.PlacementSync``, on the reloader's look), caught
up with the catalogue, and kept current by the catalogue sync as the deployed release is. The
deployed release's file names it, so a deploy of a file without it ends it. An experiment on the
placement wins: its variants name their releases. A release that cannot be served (no registry,
or it does not load) leaves the placement on the deployed release, and its lists say
``degraded: ["placement_release"]``.
"""
