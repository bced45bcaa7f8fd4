"""The embedded default dataset: a simulated data folder in the competition's exact layout and file format.

Lets every notebook and test run without the Kaggle data.  The trials come from :mod:`kit.data.simulate`
(its docstring describes the simulated EEG and the kinds of class effect, :data:`KINDS`);
:func:`write_demo_dataset` writes the 14 training and 3 test subjects at a fraction of the real trial counts,
with the test labels beside them (``test_labels.csv``) and the parameters (``demo.json``);
:func:`ensure_data` simulates the default demo folder on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from kit import __version__
from kit.core.errors import DataError
from kit.data.layout import CH_NAMES, N_TIMES, SFREQ, TEST_IDS, TRAIN_IDS, default_demo_dir, is_data_folder, resolve_data_dir
from kit.data.mat_write import write_mat
from kit.data.simulate import (
    BETA_UV,
    EFFECT_MEAN,
    EFFECT_SD,
    EVOKED_JITTER,
    EVOKED_LAT,
    EVOKED_MEAN,
    EVOKED_SD,
    EVOKED_SIGMA,
    EVOKED_UV,
    KINDS,
    LATE_THETA_UV,
    LATERAL_MEAN,
    LATERAL_ONSET,
    LATERAL_SD,
    MU_UV,
    SIGNFLIP_MEAN,
    SIGNFLIP_POSITIVE,
    SIGNFLIP_SD,
    check_kind,
    simulate_subject,
)
from kit.store.artifacts import atomic_write

__all__ = ["DEFAULT_SCALE", "KINDS", "MIN_PER_CLASS", "TEST_COUNTS", "TRAIN_COUNTS", "ensure_data",
           "simulate_subject", "write_demo_dataset"]

DEFAULT_SCALE = 0.2
"""Default size: 20 % of the real trial counts (about 2,000 training trials)."""

TRAIN_COUNTS = {2: (278, 269), 3: (334, 351), 4: (371, 400), 5: (311, 250), 6: (359, 386), 8: (406, 449),
                9: (309, 313), 10: (157, 200), 11: (172, 168), 13: (754, 740), 14: (496, 411), 15: (510, 466),
                16: (311, 320), 17: (403, 315)}
"""Real trials per training subject: (neutral, emotional), from the competition's data files."""
TEST_COUNTS = {1: 372, 7: 479, 12: 883}
"""Real trials per test subject."""
MIN_PER_CLASS = 8

def _counts(scale: float, seed: int) -> tuple[dict, dict]:
    """Trial counts at ``scale``: train {sid: (n_neu, n_emo)}, test {sid: (n, n_emo)}."""
    rng = np.random.default_rng([seed, 999])
    train = {sid: tuple(max(MIN_PER_CLASS, round(scale * k)) for k in TRAIN_COUNTS[sid]) for sid in TRAIN_IDS}
    test = {}
    for sid in TEST_IDS:
        n = max(2 * MIN_PER_CLASS, round(scale * TEST_COUNTS[sid]))
        test[sid] = (n, int(np.clip(rng.binomial(n, 0.5), MIN_PER_CLASS, n - MIN_PER_CLASS)))
    return train, test


def _session_labels(seed: int, sid: int, n_neu: int, n_emo: int) -> np.ndarray:
    return np.random.default_rng([seed, sid, 2]).permutation(np.r_[np.zeros(n_neu, int), np.ones(n_emo, int)])


def write_demo_dataset(out: str | os.PathLike, *, scale: float = DEFAULT_SCALE, seed: int = 0,
                       effect: float = 1.0, overwrite: bool = False, kind: str = "theta") -> Path:
    """Simulate a complete data folder in the competition's layout and file format.

    Writes ``out/training/sleep_{neu,emo}/S_{id}_cleaned.mat`` for the 14
    training subjects, ``out/testing/test_subject_{1,7,12}.mat`` (no
    trialinfo, classes mixed about 50/50), ``out/test_labels.csv`` (``id,label``
    with ``id = "{subject}_{trial}"``, trial in file order) and
    ``out/demo.json`` (the parameters, ``kind`` among them).  Everything is written to a hidden
    sibling folder first and renamed into place at the end (if another
    process creates ``out`` meanwhile, its copy is kept).

    Parameters
    ----------
    out : path
        The data folder to create.
    scale : float
        Trials per file = round(scale x the real count), at least 8 per class.
    seed : int
        Random seed; the same seed gives identical arrays.
    effect : float
        Strength of the emotional effect (of every kind); 0 -> null dataset.
    overwrite : bool
        Replace an existing non-empty ``out``.
    kind : str
        What differs between the classes, one of :data:`KINDS` (module
        docstring); ``"theta"`` (the default) writes the same files as
        before kinds existed, ``demo.json`` apart.

    Returns
    -------
    Path
        ``out``, the data folder as written.

    Raises
    ------
    DataError
        If ``out`` exists, is not empty and ``overwrite`` is False; or ``out`` is a file.
    ValueError
        ``scale`` not > 0 or an unknown ``kind``.
    """
    check_kind(kind)
    out = Path(out)
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: already exists and is not empty; pass overwrite=True to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        meta = _write_all(tmp, scale, seed, effect, kind)
        with atomic_write(tmp / "demo.json", "w") as fh:
            json.dump(meta, fh, indent=2)
        old = None
        if out.exists():
            old = out.parent / f"{tmp.name}.old"
            os.replace(out, old)
        try:
            os.replace(tmp, out)
        except OSError:
            if overwrite or not (out.is_dir() and any(out.iterdir())):
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another process wrote ``out`` meanwhile: keep its copy
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_all(root: Path, scale: float, seed: int, effect: float, kind: str = "theta") -> dict:
    train, test = _counts(scale, seed)
    times = np.arange(N_TIMES) / SFREQ
    r = {}
    for sid, (n_neu, n_emo) in train.items():
        labels = _session_labels(seed, sid, n_neu, n_emo)
        X, info = simulate_subject(seed, sid, labels, effect, kind)
        r[sid] = info["r"]
        cue = np.random.default_rng([seed, sid, 3]).integers(1, 9, len(labels))  # sound id, not the class
        trialinfo = np.c_[cue, np.arange(1, len(labels) + 1), info["stage"]]
        for folder, k in (("sleep_neu", 0), ("sleep_emo", 1)):
            m = labels == k
            write_mat(root / "training" / folder / f"S_{sid}_cleaned.mat", X[m], times=times,
                      ch_names=CH_NAMES, trialinfo=trialinfo[m])
        del X
    rows = ["id,label"]
    for sid, (n, n_emo) in test.items():
        labels = _session_labels(seed, sid, n - n_emo, n_emo)
        X, info = simulate_subject(seed, sid, labels, effect, kind)
        r[sid] = info["r"]
        write_mat(root / "testing" / f"test_subject_{sid}.mat", X, times=times, ch_names=CH_NAMES)
        rows += [f"{sid}_{i},{lab}" for i, lab in enumerate(labels)]
    with atomic_write(root / "test_labels.csv", "w") as fh:
        fh.write("\n".join(rows) + "\n")
    meta = dict(
        generator="kit.data.demo", kit_version=__version__, scale=scale, seed=seed, effect=effect, kind=kind,
        sfreq=SFREQ, n_times=N_TIMES, ch_names=list(CH_NAMES),
        train_counts={str(s): list(c) for s, c in train.items()},
        test_counts={str(s): [n, n_emo] for s, (n, n_emo) in test.items()},
        effect_mean=EFFECT_MEAN, effect_sd=EFFECT_SD, late_theta_uv=LATE_THETA_UV,
    )
    meta.update(kind_metadata(kind, effect, r))
    return meta


def kind_metadata(kind: str, effect: float, r: dict) -> dict:
    """What ``demo.json`` records of a kind: its constants and each subject's emotional/neutral ratio.

    Parameters
    ----------
    kind : str
    effect : float
    r : dict
        Subject id -> ``r_s`` (the ``r`` of :func:`simulate_subject`'s info).
    """
    ratio = {str(s): float(np.exp(effect * v)) for s, v in sorted(r.items())}
    meta: dict = {}
    if kind in ("theta", "signflip"):
        meta["subject_theta_power_ratio"] = ratio  # emotional / neutral late theta power
    if kind == "signflip":
        meta.update(signflip_mean=SIGNFLIP_MEAN, signflip_sd=SIGNFLIP_SD, signflip_positive=SIGNFLIP_POSITIVE)
    elif kind == "evoked":
        meta.update(evoked_uv=EVOKED_UV, evoked_lat=EVOKED_LAT, evoked_sigma=EVOKED_SIGMA,
                    evoked_jitter=EVOKED_JITTER, evoked_mean=EVOKED_MEAN, evoked_sd=EVOKED_SD,
                    subject_evoked_amplitude_ratio=ratio)  # emotional / neutral amplitude of the late wave
    elif kind == "lateral":
        meta.update(mu_uv=MU_UV, beta_uv=BETA_UV, lateral_onset=LATERAL_ONSET, lateral_mean=LATERAL_MEAN,
                    lateral_sd=LATERAL_SD,
                    subject_left_power_ratio={s: 1.0 / v for s, v in ratio.items()})  # emo / neu, left; right: 1/x
    return meta


def ensure_data(data: str | os.PathLike | None = None) -> Path:
    """:func:`kit.data.layout.resolve_data_dir`, simulating the default demo folder if that is the answer and it is missing.

    The one place where choosing a data folder may write one: every entry point
    (the stages, the notebook runner, the benchmark, the command line) calls it.

    Raises
    ------
    DataError
        From :func:`kit.data.layout.resolve_data_dir`.
    """
    path = resolve_data_dir(data)
    if path == default_demo_dir() and not is_data_folder(path):
        write_demo_dataset(path)
    return path
