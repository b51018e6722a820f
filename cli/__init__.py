"""Command line for the local stack: ``python -m cli --help``."""
