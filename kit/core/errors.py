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


# pip names of modules whose import name differs from the distribution's name
_PIP_NAMES = {"yaml": "pyyaml", "dateutil": "python-dateutil", "google": "protobuf", "sklearn": "scikit-learn",
              "PIL": "pillow", "bs4": "beautifulsoup4", "slugify": "python-slugify"}


def import_failure(package: str, exc: ImportError) -> KitError:
    """One-line :class:`KitError` for an optional ``package`` whose import raised ``exc``.

    Tells apart the package itself being absent (``kaggle: package not
    installed (pip install kaggle)``) from one of *its* modules being absent,
    which happens when a release imports a module it does not declare
    (``kaggle: its module 'six' is missing (pip install six)``), and from any
    other import error (a broken or mismatched install).

    Parameters
    ----------
    package : str
        The import name of the optional package (e.g. ``"kaggle"``).
    exc : ImportError
        What importing it raised.

    Returns
    -------
    KitError
        To be raised ``from exc``.
    """
    missing = getattr(exc, "name", None)
    if isinstance(exc, ModuleNotFoundError) and missing:
        top = missing.split(".")[0]
        if top == package:
            return KitError(f"{package}: package not installed (pip install {package})")
        return KitError(f"{package}: its module '{missing}' is missing (pip install {_PIP_NAMES.get(top, top)})")
    detail = " ".join(str(exc).split())
    return KitError(f"{package}: installed but fails to import ({detail}); "
                    "reinstall the tested versions: pip install -r requirements.lock")
