"""The ``livecore`` command and the composition root (see :mod:`livecore.cli.commands`)."""

from livecore.cli.commands import main

__all__ = ["main"]
