"""``python -m livecore`` is the ``livecore`` command."""

from livecore.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
