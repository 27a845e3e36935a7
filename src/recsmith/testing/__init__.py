"""Contract suites shipped with the package, so every implementation (ours or a third party's)
is held to the same tests.

Nothing here is imported by recsmith itself; it needs pytest, which only the ``dev`` extra brings.
"""
