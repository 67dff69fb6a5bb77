"""``python -m signalling`` is the ``livecore`` command."""

from signalling.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
