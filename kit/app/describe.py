"""``python -m kit inspect``: describe a FieldTrip .mat file or a data folder (shapes, rates, channels, trials)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kit.data.layout import discover
from kit.data.mat import env_nan_policy, read_mat


def describe_mat(path: Path) -> None:
    """Print a FieldTrip .mat file's shape (n_trials, n_chans, n_times), sfreq (Hz), times (s), channels and value range (µV)."""
    rec = read_mat(path, nan_policy=env_nan_policy())
    X = rec.trials
    n_trials, n_chans, n_times = X.shape
    print(f"{path}")
    print(f"  trials    {n_trials} trials x {n_chans} channels x {n_times} samples, {X.dtype} (µV)")
    print(f"  sfreq     {rec.sfreq:g} Hz")
    print(f"  time      {rec.times[0]:.3f} to {rec.times[-1]:.3f} s")
    print(f"  channels  {' '.join(rec.ch_names)}")
    if X.size:
        print(f"  values    mean {X.mean():.3g}, std {X.std():.3g}, min {X.min():.3g}, max {X.max():.3g} µV")
    info = "none" if rec.trialinfo is None else f"shape {tuple(np.shape(rec.trialinfo))}"
    print(f"  trialinfo {info}")


def describe_folder(root: Path) -> None:
    """Print a data folder's subjects, trials per class, channels, sfreq (Hz) and time range (s), one row per file set."""
    layout = discover(root)
    rows, ch_sets = [], {}
    for sid, (neu, emo) in sorted(layout.train.items()):
        r_neu, r_emo = read_mat(neu, nan_policy=env_nan_policy()), read_mat(emo, nan_policy=env_nan_policy())
        rows.append((sid, "train", len(r_neu.trials), len(r_emo.trials), r_neu))
        ch_sets.setdefault(tuple(r_neu.ch_names), []).append(f"S{sid}")
        ch_sets.setdefault(tuple(r_emo.ch_names), []).append(f"S{sid}")
    for sid, path in sorted(layout.test.items()):
        rec = read_mat(path, nan_policy=env_nan_policy())
        rows.append((sid, "test", None, None, rec))
        ch_sets.setdefault(tuple(rec.ch_names), []).append(f"test S{sid}")
    print(f"{root}")
    print(f"  {'subject':>7}  {'split':5}  {'neutral':>7}  {'emotional':>9}  {'trials':>6}  "
          f"{'chans':>5}  {'sfreq':>6}  time (s)")
    n_train = n_test = 0
    for sid, split, n_neu, n_emo, rec in rows:
        n = len(rec.trials) if split == "test" else n_neu + n_emo
        n_train += n if split == "train" else 0
        n_test += n if split == "test" else 0
        neu = "-" if n_neu is None else str(n_neu)
        emo = "-" if n_emo is None else str(n_emo)
        print(f"  {sid:>7}  {split:5}  {neu:>7}  {emo:>9}  {n:>6}  {rec.trials.shape[1]:>5}  "
              f"{rec.sfreq:>6g}  {rec.times[0]:.3f}-{rec.times[-1]:.3f}")
    print(f"  {len(layout.train)} training subjects ({n_train} trials), {len(layout.test)} test subjects "
          f"({n_test} trials)")
    for names, where in ch_sets.items():
        label = "channels" if len(ch_sets) == 1 else f"channels ({', '.join(where)})"
        print(f"  {label}: {' '.join(names)}")
    if len(ch_sets) > 1:
        print("  warning: files differ in channel names or order")
