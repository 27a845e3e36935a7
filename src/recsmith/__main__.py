"""``python -m recsmith`` runs the CLI."""

from recsmith.cli.app import main

main()
