"""The kit's logger: library code reports progress through :mod:`logging` (logger ``"kit"`` and its children).

Nothing is printed by the library itself: the command line (``python -m kit -v ...``) or ``$KIT_LOG`` (``INFO``,
``DEBUG``, ``WARNING``...) sets the level and a handler once (:func:`configure`); the notebooks and the command
line print their own results.  Without either, Python shows warnings and errors only.
"""

from __future__ import annotations

import logging
import os
import sys

LOGGER_NAME = "kit"
"""The parent logger of every module of the kit (``logging.getLogger(__name__)`` inside ``kit``)."""


def configure(level: str | int | None = None) -> logging.Logger:
    """Give the ``kit`` logger a level and one handler writing ``message`` lines to standard error.

    Parameters
    ----------
    level : str or int, optional
        A :mod:`logging` level; default ``$KIT_LOG``, else ``WARNING``.

    Returns
    -------
    logging.Logger
        The ``kit`` logger.

    Raises
    ------
    ValueError
        An unknown level name.
    """
    level = level if level is not None else os.environ.get("KIT_LOG", "WARNING")
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    if not any(getattr(h, "_kit", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._kit = True
        logger.addHandler(handler)
    return logger


if os.environ.get("KIT_LOG"):
    configure()
