"""The ``livecore`` command and the composition root (see :mod:`signalling.cli.commands`)."""

from signalling.cli.commands import main

__all__ = ["main"]
