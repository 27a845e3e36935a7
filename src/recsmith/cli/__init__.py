"""The ``recsmith`` command line (Typer + rich)."""
