"""Test helpers shipped with the package, so third-party store backends can run the same contract.

Nothing here is imported by recsmith itself; it needs pytest, which only the ``dev`` extra brings.
"""
