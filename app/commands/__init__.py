"""Subcommands of the ``hotline`` console command."""
