"""Kaggle: credentials, submissions through the ``kaggle`` package, push-ready kernels and the kit as a dataset.

Three jobs:

* :func:`submit`: upload a submission file with the ``kaggle`` package's
  Python API (``KaggleApi.competition_submit``) after checking the
  credentials here, before ``kaggle`` is imported (importing it
  authenticates, and prints or exits when it finds none).  The API key is
  never printed: every message that leaves this module is scrubbed of it.
* :func:`build_kernel`: a folder for ``kaggle kernels push -p OUT``: one
  notebook (a notebook of the series, or the whole series in one) and its
  ``kernel-metadata.json``.  A Kaggle kernel has no internet and runs the
  notebook with its working directory ``/kaggle/working`` and its own folder
  not on ``sys.path``, so the kit reaches it as a **wheel**: embedded in the
  notebook's first cell (base64, the default), or read from an attached
  Kaggle dataset made by :func:`build_dataset` (``--kit-dataset``).  That
  first cell unpacks the wheel into a temporary folder (not
  ``/kaggle/working``, which is the kernel's output), puts it first on
  ``sys.path`` and calls :func:`kaggle_setup`.
* :func:`build_dataset`: a folder for ``kaggle datasets create -p OUT``:
  ``dataset-metadata.json``, the wheel and the wheels of :data:`VENDORED` (flat files: the Kaggle CLI
  skips sub-folders unless told otherwise).  A kernel's first cell unpacks a vendored dependency only
  where the image cannot import it (pyriemann and its array-API helpers may be missing on Kaggle).

Paths inside a kernel: the competition data is read from
``/kaggle/input/predicting-emotions-using-brain-waves`` (found anywhere
under ``/kaggle/input`` if Kaggle mounts it elsewhere; ``$KIT_KAGGLE_INPUT``
replaces ``/kaggle/input`` for tests), outputs go to ``/kaggle/working``
(:func:`kit.store.paths.output_root`).

Modules: :mod:`.credentials` (credentials, :func:`submit`), :mod:`.wheel` (the kit as a wheel),
:mod:`.in_kernel` (what a kernel's first cell calls), :mod:`.kernel` (kernel and dataset folders).
"""

from kit.app.kaggle.credentials import TOKEN_HELP, Credentials, find_credentials, kaggle_config_dir, scrub, submit
from kit.app.kaggle.in_kernel import KAGGLE_INPUT_ROOT, find_competition_data, kaggle_setup, publish_submission
from kit.app.kaggle.kernel import ALL, DEFAULT_DATASET_SLUG, build_dataset, build_kernel, kernel_notebook, kernel_summary
from kit.app.kaggle.wheel import DIST_NAME, VENDORED, build_wheel, dependency_wheel, wheel_bytes, wheel_name

__all__ = ["ALL", "DEFAULT_DATASET_SLUG", "DIST_NAME", "KAGGLE_INPUT_ROOT", "TOKEN_HELP", "VENDORED", "Credentials",
           "build_dataset", "build_kernel", "build_wheel", "dependency_wheel", "find_competition_data", "find_credentials",
           "kaggle_config_dir", "kaggle_setup", "kernel_notebook", "kernel_summary", "publish_submission",
           "scrub", "submit", "wheel_bytes", "wheel_name"]
