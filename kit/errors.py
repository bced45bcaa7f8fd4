"""Errors meant for the user: the command line prints them as one line, no traceback."""


class KitError(Exception):
    """A problem with the user's input or environment, explained in one line.

    The message names the file (or folder) and what is wrong with it.
    ``python -m kit`` prints ``error: <message>`` and exits with status 2.
    """


class DataError(KitError):
    """A data folder or ``.mat`` file is missing, corrupt or of another layout."""


class SubmissionError(KitError):
    """A submission file is malformed or does not match the test data."""


class CheckpointError(KitError):
    """A checkpoint or artifact is missing, corrupt, or from another config or version."""
