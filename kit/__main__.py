"""``python -m kit``: see :mod:`kit.app.cli`."""

from kit.app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
