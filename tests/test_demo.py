"""Tests for kit.data.demo: the simulated dataset's layout, determinism, effect and spectrum."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy.signal import butter, hilbert, sosfiltfilt, welch

from kit.core.errors import DataError
from kit.data.dataset import load_dataset
from kit.data.demo import DEFAULT_SCALE, simulate_subject, write_demo_dataset
from kit.data.layout import CH_NAMES, TEST_IDS, TRAIN_IDS, discover
from kit.data.mat import read_mat

SCALE = 0.03


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("demo") / "data", scale=SCALE, seed=0)


def arrays(root):
    return {p.relative_to(root): read_mat(p).trials for p in sorted(root.rglob("*.mat"))}


def test_layout_and_counts(demo):
    files = sorted(str(p.relative_to(demo)) for p in demo.rglob("*") if p.is_file())
    expected = sorted([f"training/sleep_{c}/S_{s}_cleaned.mat" for s in TRAIN_IDS for c in ("neu", "emo")]
                      + [f"testing/test_subject_{s}.mat" for s in TEST_IDS] + ["test_labels.csv", "demo.json"])
    assert files == expected
    assert [p.name for p in demo.parent.iterdir()] == ["data"]  # no temporary folder left behind
    lay = discover(demo)
    assert list(lay.train) == sorted(TRAIN_IDS) and list(lay.test) == sorted(TEST_IDS)
    ds = load_dataset(demo)
    # round(0.03 * real count), at least 8 per class; tests at least 16
    n = {(s, y): int(((ds.subject == s) & (ds.y == y)).sum()) for s in ds.subjects for y in (-1, 0, 1)}
    assert n[(2, 0)] == 8 and n[(2, 1)] == 8 and n[(13, 0)] == 23 and n[(13, 1)] == 22 and n[(14, 0)] == 15
    assert n[(1, -1)] == 16 and n[(7, -1)] == 16 and n[(12, -1)] == 26
    assert ds.X.shape[1:] == (16, 200) and ds.ch_names == list(CH_NAMES) and ds.sfreq == 200.0
    rec = read_mat(lay.train[3][0])
    assert rec.trialinfo.shape == (len(rec.trials), 3)  # training files carry a trialinfo, tests none
    assert read_mat(lay.test[1]).trialinfo is None
    meta = json.loads((demo / "demo.json").read_text())
    assert meta["scale"] == SCALE and meta["seed"] == 0 and meta["effect"] == 1.0
    assert meta["train_counts"]["13"] == [23, 22]


def test_labels_csv_matches_test_files(demo):
    labels = pd.read_csv(demo / "test_labels.csv")
    assert list(labels.columns) == ["id", "label"]
    ds = load_dataset(demo, splits=("test",))
    assert labels["id"].tolist() == [f"{s}_{t}" for s, t in zip(ds.subject, ds.trial)]
    assert set(labels["label"]) == {0, 1}
    subject = labels["id"].str.split("_").str[0].astype(int)
    for sid in TEST_IDS:
        y = labels["label"][subject == sid]
        assert min(y.sum(), (1 - y).sum()) >= 8 and abs(y.mean() - 0.5) < 0.3


def test_deterministic(demo, tmp_path):
    again = arrays(write_demo_dataset(tmp_path / "a", scale=SCALE, seed=0))
    first = arrays(demo)
    assert again.keys() == first.keys()
    for k in first:
        np.testing.assert_array_equal(again[k], first[k])
    assert (tmp_path / "a" / "test_labels.csv").read_bytes() == (demo / "test_labels.csv").read_bytes()
    other = arrays(write_demo_dataset(tmp_path / "b", scale=SCALE, seed=1))
    assert all(not np.array_equal(other[k], first[k]) for k in first if other[k].shape == first[k].shape)


def test_effect_changes_only_emotional_trials(demo, tmp_path):
    null = tmp_path / "null"
    write_demo_dataset(null, scale=SCALE, seed=0, effect=0.0)
    a, b = arrays(demo), arrays(null)
    for k in a:
        if "sleep_neu" in str(k):
            np.testing.assert_array_equal(a[k], b[k])
        elif "sleep_emo" in str(k):
            assert not np.array_equal(a[k], b[k])
    labels = pd.read_csv(demo / "test_labels.csv")
    ds1, ds0 = load_dataset(demo, splits=("test",)), load_dataset(null, splits=("test",))
    emo = labels["label"].to_numpy() == 1
    np.testing.assert_array_equal(ds1.X[~emo], ds0.X[~emo])
    # the difference is a theta burst around 0.5 s
    d = (ds1.X[emo] - ds0.X[emo]).astype(np.float64)
    energy = (d ** 2).sum(axis=(0, 1))
    t = ds1.times
    assert energy[(t > 0.25) & (t < 0.75)].sum() > 0.97 * energy.sum()
    f, P = welch(d, fs=200, nperseg=200, axis=-1)
    P = P.sum(axis=(0, 1))
    assert P[(f >= 3) & (f <= 9)].sum() > 0.9 * P.sum()
    assert json.loads((null / "demo.json").read_text())["effect"] == 0.0


def test_spectrum_looks_like_sleep(demo):
    ds = load_dataset(demo, splits=("train",))
    f, P = welch(ds.X, fs=200, nperseg=200, axis=-1)  # 1 Hz bins
    P = P.mean(axis=0)
    mean = P.mean(axis=0)
    assert mean[2] > 20 * mean[20]  # 1/f: far more power at 2 Hz than at 20 Hz
    slope = np.polyfit(np.log(f[2:31]), np.log(mean[2:31]), 1)[0]
    assert -2.5 < slope < -1.3  # aperiodic exponent of sleep EEG
    cz = P[ds.ch_names.index("Cz")]
    assert cz[12:16].mean() > 1.3 * np.sqrt(cz[9] * cz[19])  # spindle bump above the 1/f line
    sd = ds.X.std(axis=(0, 2))
    assert (sd > 5).all() and (sd < 60).all()  # tens of µV
    # slow oscillations: frontal channels carry the most delta power
    delta = P[:, 1:3].sum(axis=1)
    assert delta[ds.ch_names.index("F3")] > delta[ds.ch_names.index("O1")]


def test_effect_is_late_theta_power():
    labels = np.tile([0, 1], 1000)
    rs = [simulate_subject(0, sid, labels[:16])[1]["r"] for sid in TRAIN_IDS]
    sid = TRAIN_IDS[int(np.argmax(rs))]
    sos = butter(4, [4, 8], btype="band", fs=200, output="sos")
    fc = [CH_NAMES.index(c) for c in ("F3", "F4", "C3", "C4", "Cz")]
    ratio = {}
    for effect in (1.0, 0.0):
        X, info = simulate_subject(0, sid, labels, effect)
        assert X.shape == (2000, 16, 200) and X.dtype == np.float32
        power = np.abs(hilbert(sosfiltfilt(sos, X[:, fc], axis=-1), axis=-1)) ** 2
        ratio[effect] = power[labels == 1].mean(axis=(0, 1)) / power[labels == 0].mean(axis=(0, 1))
    assert ratio[1.0][95:106].mean() > 1.3  # stronger theta in emotional trials at ~0.5 s
    assert 0.85 < ratio[1.0][10:40].mean() < 1.15  # not at 50-200 ms
    assert 0.85 < ratio[0.0][95:106].mean() < 1.15  # null: no difference


def test_refuses_to_overwrite(tmp_path):
    out = tmp_path / "d"
    write_demo_dataset(out, scale=SCALE, seed=0)
    before = (out / "test_labels.csv").read_bytes()
    with pytest.raises(DataError, match=rf"^{out}: already exists"):
        write_demo_dataset(out, scale=SCALE, seed=1)
    assert (out / "test_labels.csv").read_bytes() == before
    (out / "stray.txt").write_text("x")
    write_demo_dataset(out, scale=SCALE, seed=1, overwrite=True)
    assert not (out / "stray.txt").exists()
    assert (out / "test_labels.csv").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_demo_dataset(empty, scale=SCALE) == empty  # an empty folder is not a data folder
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        write_demo_dataset(tmp_path / "file", scale=SCALE)


def test_default_scale_is_fast(tmp_path):
    t0 = time.perf_counter()
    out = write_demo_dataset(tmp_path / "d")
    took = time.perf_counter() - t0
    assert took < 20.0
    ds = load_dataset(out, splits=("train",))
    assert DEFAULT_SCALE == 0.2 and 1900 < len(ds) < 2200
