"""Tests for kit.data.dataset: .mat reading/writing, folder discovery, dataset loading."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from kit.core.errors import DataError, KitError
from kit.data.dataset import Dataset, load_dataset
from kit.data.layout import CH_NAMES, N_TIMES, SFREQ, discover
from kit.data.mat import Recording, read_mat
from kit.data.mat_write import write_mat
from kit.store import paths

TIMES = np.arange(N_TIMES) / SFREQ
SHARED = Path(paths.project_root()).parent / "shared" / "data" / "eegmmidb-lr"
REAL_FILE = SHARED / "training" / "sleep_neu" / "S_2_cleaned.mat"


def make_trials(n, n_chans=16, n_times=N_TIMES, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, n_chans, n_times)) * 20).astype(np.float32)


def write_folder(root, train=None, test=None, seed=0):
    """Tiny data folder: train {sid: (n_neu, n_emo)}, test {sid: n}; returns {file: trials}."""
    train = {2: (5, 4), 3: (3, 6)} if train is None else train
    test = {1: 7} if test is None else test
    out = {}
    for k, (sid, (n_neu, n_emo)) in enumerate(train.items()):
        for folder, n, j in (("sleep_neu", n_neu, 0), ("sleep_emo", n_emo, 1)):
            X = make_trials(n, seed=seed + 10 * k + j)
            p = root / "training" / folder / f"S_{sid}_cleaned.mat"
            # trialinfo's first column deliberately contradicts the folder
            write_mat(p, X, times=TIMES, ch_names=CH_NAMES, trialinfo=np.c_[np.full(n, 1 - j), np.arange(n)])
            out[p] = X
    for k, (sid, n) in enumerate(test.items()):
        X = make_trials(n, seed=seed + 100 + k)
        p = root / "testing" / f"test_subject_{sid}.mat"
        write_mat(p, X, times=TIMES, ch_names=CH_NAMES)
        out[p] = X
    return out


def h5_with_header(path):
    """Open a new HDF5 file with a 512-byte user block (as MATLAB v7.3 does)."""
    return h5py.File(path, "w", userblock_size=512)


def set_class(obj, cls):
    obj.attrs["MATLAB_class"] = np.bytes_(cls.encode())
    return obj


# --------------------------------------------------------------------------- write / read


def test_round_trip(tmp_path):
    X = make_trials(11)
    X[0, 0, :3] = [1.5, -2.25, 1e3]
    info = np.c_[np.arange(11), np.full(11, 3.0)]
    names = list(CH_NAMES[::-1])
    p = write_mat(tmp_path / "a.mat", X, times=TIMES, ch_names=names, trialinfo=info)
    rec = read_mat(p)
    assert isinstance(rec, Recording)
    assert rec.trials.dtype == np.float32 and rec.trials.shape == (11, 16, 200)
    np.testing.assert_array_equal(rec.trials, X)
    np.testing.assert_array_equal(rec.times, TIMES)
    assert rec.times[-1] == pytest.approx(0.995)
    assert rec.sfreq == 200.0 and rec.ch_names == names and rec.path == p
    np.testing.assert_array_equal(rec.trialinfo, info)
    assert rec.trials.flags.c_contiguous


def test_written_layout_and_header(tmp_path):
    X = make_trials(4)
    p = write_mat(tmp_path / "a.mat", X, times=TIMES, ch_names=CH_NAMES)
    head = p.read_bytes()[:512]
    assert head.startswith(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: ")
    assert b"HDF5 schema 1.00 ." in head[:116]
    assert head[116:124] == b"\0" * 8 and head[124:128] == b"\x00\x02IM" and head[128:] == b"\0" * 384
    with h5py.File(p, "r") as f:
        assert f.userblock_size == 512
        d = f["data"]
        assert d.attrs["MATLAB_class"] == b"struct"
        assert d["trial"].shape == (200, 16, 4) and d["trial"].dtype == np.float32
        np.testing.assert_array_equal(d["trial"][:, 3, 2], X[2, 3])
        assert d["time"].shape == (200, 1) and d["fsample"][()].item() == 200.0
        assert "trialinfo" not in d
        assert d["label"].shape == (16, 1) and d["label"].attrs["MATLAB_class"] == b"cell"
        c = f[d["label"][4, 0]]
        assert c.dtype == np.uint16 and c.shape == (2, 1) and c.attrs["MATLAB_class"] == b"char"
        assert "".join(map(chr, c[:, 0])) == "Cz"
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write left no temporary file


def test_scipy_cannot_read_v73_but_h5py_can(tmp_path):
    p = write_mat(tmp_path / "a.mat", make_trials(2), times=TIMES, ch_names=CH_NAMES)
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(p)
    assert h5py.is_hdf5(p)


@pytest.mark.skipif(not REAL_FILE.is_file(), reason="../shared data not present")
def test_layout_matches_real_competition_style_file(tmp_path):
    real = read_mat(REAL_FILE)
    p = write_mat(tmp_path / "a.mat", real.trials, times=real.times, ch_names=real.ch_names,
                  trialinfo=real.trialinfo)
    assert p.read_bytes()[:52] == REAL_FILE.read_bytes()[:52]
    assert p.read_bytes()[116:512] == REAL_FILE.read_bytes()[116:512]

    def describe(path):
        rows = []
        with h5py.File(path, "r") as f:
            assert f.userblock_size == 512
            f.visititems(lambda name, o: rows.append((
                name, type(o).__name__, getattr(o, "shape", None), str(getattr(o, "dtype", "")),
                sorted((k, v, str(np.asarray(v).dtype)) for k, v in o.attrs.items()))))
            trial = f["data/trial"][()]
        return rows, trial

    mine, t1 = describe(p)
    theirs, t2 = describe(REAL_FILE)
    assert mine == theirs
    np.testing.assert_array_equal(t1, t2)
    again = read_mat(p)
    np.testing.assert_array_equal(again.trials, real.trials)
    assert again.ch_names == real.ch_names


def test_v5_cell_trials_double(tmp_path):
    X = np.random.default_rng(1).standard_normal((6, 16, 200)) * 30  # float64
    cell = np.empty((1, 6), dtype=object)
    for i in range(6):
        cell[0, i] = X[i]
    label = np.empty((16, 1), dtype=object)
    for i, c in enumerate(CH_NAMES):
        label[i, 0] = c
    data = {"trial": cell, "time": TIMES[None], "fsample": 200.0, "label": label,
            "trialinfo": np.c_[np.arange(6), np.ones(6)]}
    scipy.io.savemat(tmp_path / "v5.mat", {"data": data})
    rec = read_mat(tmp_path / "v5.mat")
    assert rec.trials.dtype == np.float32 and rec.trials.shape == (6, 16, 200)
    np.testing.assert_array_equal(rec.trials, X.astype(np.float32))
    assert rec.ch_names == list(CH_NAMES) and rec.sfreq == 200.0
    np.testing.assert_array_equal(rec.trialinfo, data["trialinfo"])


def test_v5_numeric_double_without_label_trialinfo_fsample(tmp_path):
    X = np.random.default_rng(2).standard_normal((5, 16, 200))
    scipy.io.savemat(tmp_path / "v5.mat", {"data": {"trial": X, "time": TIMES[None]}})
    rec = read_mat(tmp_path / "v5.mat")
    np.testing.assert_array_equal(rec.trials, X.astype(np.float32))
    assert rec.ch_names == list(CH_NAMES)  # no label: the competition order
    assert rec.trialinfo is None
    assert rec.sfreq == 200.0  # derived from time


def test_v5_char_matrix_label_and_reordered_axes(tmp_path):
    X = make_trials(3)
    names = [c.ljust(3) for c in CH_NAMES]  # a MATLAB char matrix pads with blanks
    # (n_times, n_trials, n_chans): identified by the sizes of time and label
    scipy.io.savemat(tmp_path / "v5.mat", {"data": {"trial": X.transpose(2, 0, 1), "time": TIMES,
                                                    "fsample": 200.0, "label": np.array(names)}})
    rec = read_mat(tmp_path / "v5.mat")
    assert rec.ch_names == list(CH_NAMES)
    np.testing.assert_array_equal(rec.trials, X)


def test_h5_object_reference_fields_and_cell_trials(tmp_path):
    """FieldTrip-style v7.3: trial a cell of refs, fsample and time behind refs, label char refs."""
    X = make_trials(4)
    names = ["O2", "O1", *CH_NAMES[:14]]
    p = tmp_path / "refs.mat"
    with h5_with_header(p) as f:
        refs = f.create_group("#refs#")
        d = set_class(f.create_group("data"), "struct")
        trial_refs = np.empty((4, 1), dtype=h5py.ref_dtype)
        for i in range(4):  # h5py sees each MATLAB (n_chans, n_times) cell as (n_times, n_chans)
            trial_refs[i, 0] = set_class(refs.create_dataset(f"t{i}", data=X[i].T.astype(np.float64)), "double").ref
        set_class(d.create_dataset("trial", data=trial_refs), "cell")
        fs = set_class(refs.create_dataset("fs", data=np.full((1, 1), 200.0)), "double")
        d.create_dataset("fsample", data=np.array([[fs.ref]], dtype=h5py.ref_dtype))
        tm = set_class(refs.create_dataset("tm", data=TIMES[:, None]), "double")
        d.create_dataset("time", data=np.array([[tm.ref]], dtype=h5py.ref_dtype))
        lab = np.empty((16, 1), dtype=h5py.ref_dtype)
        for i, c in enumerate(names):
            lab[i, 0] = set_class(refs.create_dataset(f"c{i}", data=np.array([[ord(ch)] for ch in c], np.uint16)),
                                  "char").ref
        set_class(d.create_dataset("label", data=lab), "cell")
    rec = read_mat(p)
    np.testing.assert_array_equal(rec.trials, X)
    assert rec.ch_names == names and rec.sfreq == 200.0 and rec.trialinfo is None
    np.testing.assert_array_equal(rec.times, TIMES)


def test_h5_missing_fsample_and_label(tmp_path):
    X = make_trials(3)
    p = tmp_path / "bare.mat"
    with h5_with_header(p) as f:
        d = set_class(f.create_group("data"), "struct")
        set_class(d.create_dataset("trial", data=X.T.astype(np.float64)), "double")
        set_class(d.create_dataset("time", data=TIMES[:, None]), "double")
    rec = read_mat(p)
    np.testing.assert_array_equal(rec.trials, X)
    assert rec.ch_names == list(CH_NAMES) and rec.sfreq == 200.0


def test_h5_label_as_char_matrix(tmp_path):
    X = make_trials(2)
    p = tmp_path / "charmat.mat"
    width = max(map(len, CH_NAMES))
    codes = np.array([[ord(ch) for ch in c.ljust(width)] for c in CH_NAMES], np.uint16)  # MATLAB (16, 3)
    with h5_with_header(p) as f:
        d = set_class(f.create_group("data"), "struct")
        set_class(d.create_dataset("trial", data=X.T), "single")
        set_class(d.create_dataset("fsample", data=np.full((1, 1), 200.0)), "double")
        set_class(d.create_dataset("label", data=codes.T), "char")
    rec = read_mat(p)
    assert rec.ch_names == list(CH_NAMES)
    np.testing.assert_array_equal(rec.trials, X)


def test_200_trials_keep_matlab_axis_order(tmp_path):
    """n_trials == n_times (competition subject 10, emotional: 200 trials): the MATLAB order wins."""
    X = make_trials(200)
    rec = read_mat(write_mat(tmp_path / "a.mat", X, times=TIMES, ch_names=CH_NAMES))
    np.testing.assert_array_equal(rec.trials, X)


def test_ambiguous_axes(tmp_path):
    X = make_trials(16)  # 16 trials x 16 chans: (n_chans, n_times, n_trials) cannot be told apart
    scipy.io.savemat(tmp_path / "v5.mat", {"data": {"trial": X.transpose(1, 2, 0), "time": TIMES,
                                                    "fsample": 200.0}})
    with pytest.raises(DataError, match=r"v5\.mat: cannot tell the axes .* ambiguous"):
        read_mat(tmp_path / "v5.mat")


# --------------------------------------------------------------------------- read errors


def test_missing_and_empty_and_garbage_files(tmp_path):
    with pytest.raises(DataError, match=r"^\S*nope\.mat: file not found$"):
        read_mat(tmp_path / "nope.mat")
    (tmp_path / "empty.mat").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mat: empty file"):
        read_mat(tmp_path / "empty.mat")
    (tmp_path / "junk.mat").write_bytes(b"hello, this is not MATLAB\n" * 20)
    with pytest.raises(DataError, match=r"^\S*junk\.mat: not a readable MATLAB \.mat file"):
        read_mat(tmp_path / "junk.mat")


def test_truncated_v73_file(tmp_path):
    p = write_mat(tmp_path / "a.mat", make_trials(20), times=TIMES, ch_names=CH_NAMES)
    blob = p.read_bytes()
    for cut in (300, 2000, len(blob) // 2):
        q = tmp_path / f"cut{cut}.mat"
        q.write_bytes(blob[:cut])
        with pytest.raises(DataError, match=rf"^\S*cut{cut}\.mat: truncated or corrupt MATLAB v7\.3") as e:
            read_mat(q)
        assert "\n" not in str(e.value)


def test_foreign_struct_name(tmp_path):
    p = tmp_path / "ft.mat"
    with h5_with_header(p) as f:
        g = set_class(f.create_group("ftdata"), "struct")
        set_class(g.create_dataset("trial", data=make_trials(2).T), "single")
        set_class(f.create_dataset("cfg_version", data=np.ones((1, 1))), "double")
    with pytest.raises(DataError, match=r"ft\.mat: no struct 'data' .*cfg_version, ftdata.*'ftdata' looks like a FieldTrip"):
        read_mat(p)
    scipy.io.savemat(tmp_path / "v5.mat", {"eeg": {"trial": make_trials(2), "time": TIMES}})
    with pytest.raises(DataError, match=r"v5\.mat: no struct 'data' .*variables found: eeg\)"):
        read_mat(tmp_path / "v5.mat")


def test_wrong_sfreq_times_chans_and_zero_trials(tmp_path):
    with pytest.raises(DataError, match=r"a\.mat: sampling rate 250 Hz, expected 200 Hz"):
        read_mat(write_mat(tmp_path / "a.mat", make_trials(2), times=TIMES, ch_names=CH_NAMES, sfreq=250))
    with pytest.raises(DataError, match=r"b\.mat: 100 samples per trial, expected 200"):
        read_mat(write_mat(tmp_path / "b.mat", make_trials(2, n_times=100), times=TIMES[:100], ch_names=CH_NAMES))
    with pytest.raises(DataError, match=r"c\.mat: 8 channels, expected 16"):
        read_mat(write_mat(tmp_path / "c.mat", make_trials(2, n_chans=8), times=TIMES, ch_names=CH_NAMES[:8]))
    with pytest.raises(DataError, match=r"d\.mat: zero trials"):
        read_mat(write_mat(tmp_path / "d.mat", make_trials(0), times=TIMES, ch_names=CH_NAMES))
    # no label and not 16 channels: no way to name them
    scipy.io.savemat(tmp_path / "e.mat", {"data": {"trial": make_trials(3, n_chans=8), "time": TIMES}})
    with pytest.raises(DataError, match=r"e\.mat: .*n_chans=16.*no 'label' field"):
        read_mat(tmp_path / "e.mat")
    # sampling rate from time when fsample is missing
    scipy.io.savemat(tmp_path / "f.mat", {"data": {"trial": make_trials(2), "time": np.arange(200) / 100.0}})
    with pytest.raises(DataError, match=r"f\.mat: sampling rate 100 Hz"):
        read_mat(tmp_path / "f.mat")


def test_nan_raise_message(tmp_path):
    X = make_trials(6)
    X[2, 5, 10:13] = np.nan
    X[4, 0, 0] = np.inf
    p = write_mat(tmp_path / "n.mat", X, times=TIMES, ch_names=CH_NAMES)
    with pytest.raises(DataError) as e:
        read_mat(p)
    msg = str(e.value)
    assert msg.startswith(str(p) + ": 4 NaN/inf samples in 2 of 6 trials (first: trial 2, channel 5 C5)")
    assert "nan_policy='zero'" in msg and "nan_policy='interpolate'" in msg and "\n" not in msg


def test_nan_repair_policies(tmp_path):
    X = make_trials(3)
    X[0, 1, :4] = [np.nan, 2.0, np.nan, 4.0]
    X[1, 2, :] = np.nan
    X[2, 3, -2:] = [5.0, np.inf]
    p = write_mat(tmp_path / "n.mat", X, times=TIMES, ch_names=CH_NAMES)
    good = np.isfinite(X)
    z = read_mat(p, nan_policy="zero").trials
    np.testing.assert_array_equal(z[good], X[good])
    assert (z[~good] == 0).all() and (~good).sum() == 203
    i = read_mat(p, nan_policy="interpolate").trials
    np.testing.assert_array_equal(i[good], X[good])
    assert i[0, 1, 0] == 2.0 and i[0, 1, 2] == 3.0  # edge held, middle interpolated
    assert (i[1, 2] == 0).all()  # a whole bad row becomes 0 µV
    assert i[2, 3, -1] == 5.0
    with pytest.raises(ValueError, match="nan_policy"):
        read_mat(p, nan_policy="drop")


def test_errors_are_kit_errors_on_one_line(tmp_path):
    with pytest.raises(KitError) as e:
        read_mat(tmp_path / "x" / "nope.mat")
    assert "\n" not in str(e.value) and str(e.value).startswith(str(tmp_path))


# --------------------------------------------------------------------------- folders


def test_discover(tmp_path):
    write_folder(tmp_path)
    (tmp_path / "README.txt").write_text("not data")
    (tmp_path / "training" / "sleep_neu" / ".S_9_cleaned.mat.x.tmp").write_text("temp")
    lay = discover(tmp_path)
    assert lay.root == tmp_path
    assert list(lay.train) == [2, 3] and list(lay.test) == [1]
    assert lay.train[3] == (tmp_path / "training/sleep_neu/S_3_cleaned.mat",
                            tmp_path / "training/sleep_emo/S_3_cleaned.mat")
    assert lay.test[1] == tmp_path / "testing/test_subject_1.mat"


def test_discover_errors(tmp_path):
    with pytest.raises(DataError, match=r"nothere: data folder not found"):
        discover(tmp_path / "nothere")
    (tmp_path / "training" / "sleep_neu").mkdir(parents=True)
    with pytest.raises(DataError, match=rf"^{tmp_path}: no \.mat files"):
        discover(tmp_path)
    write_folder(tmp_path, train={2: (3, 3), 4: (3, 3)}, test={})
    (tmp_path / "training/sleep_emo/S_4_cleaned.mat").unlink()
    with pytest.raises(DataError, match=r"sleep_emo/S_4_cleaned\.mat: missing \(subject 4 has a sleep_neu file"):
        discover(tmp_path)
    (tmp_path / "training/sleep_neu/S_4_cleaned.mat").rename(tmp_path / "training/sleep_neu/subject4.mat")
    with pytest.raises(DataError, match=r"sleep_neu/subject4\.mat: unexpected \.mat file"):
        discover(tmp_path)


def test_load_dataset(tmp_path):
    files = write_folder(tmp_path)
    ds = load_dataset(tmp_path)
    assert isinstance(ds, Dataset) and len(ds) == 5 + 4 + 3 + 6 + 7
    assert ds.X.shape == (25, 16, 200) and ds.X.dtype == np.float32
    assert ds.y.dtype == np.int8 and ds.subject.dtype == np.int64 and ds.trial.dtype == np.int64
    # labels from the folder, not from trialinfo (which says the opposite here)
    np.testing.assert_array_equal(ds.y, [0] * 5 + [1] * 4 + [0] * 3 + [1] * 6 + [-1] * 7)
    np.testing.assert_array_equal(ds.subject, [2] * 9 + [3] * 9 + [1] * 7)
    np.testing.assert_array_equal(ds.trial, [*range(9), *range(9), *range(7)])
    np.testing.assert_array_equal(ds.is_test, ds.y == -1)
    np.testing.assert_array_equal(ds.X[5:9], files[tmp_path / "training/sleep_emo/S_2_cleaned.mat"])
    np.testing.assert_array_equal(ds.X[18:], files[tmp_path / "testing/test_subject_1.mat"])
    assert ds.sfreq == 200.0 and ds.ch_names == list(CH_NAMES) and ds.root == tmp_path
    np.testing.assert_array_equal(ds.subjects, [1, 2, 3])
    tr, te = ds.train, ds.test
    assert len(tr) == 18 and len(te) == 7 and (te.y == -1).all() and (tr.y >= 0).all()
    np.testing.assert_array_equal(tr.subjects, [2, 3])
    sub = ds.subset([0, 24])
    np.testing.assert_array_equal(sub.trial, [0, 6])
    np.testing.assert_array_equal(sub.subject, [2, 1])
    only = load_dataset(tmp_path, splits=("test",))
    np.testing.assert_array_equal(only.X, files[tmp_path / "testing/test_subject_1.mat"])
    np.testing.assert_array_equal(only.trial, np.arange(7))
    (tmp_path / "testing/test_subject_1.mat").unlink()
    with pytest.raises(DataError, match="testing: no test files"):
        load_dataset(tmp_path, splits=("test",))


def test_load_dataset_reorders_channels_by_name(tmp_path):
    files = write_folder(tmp_path, train={2: (3, 2), 3: (2, 3)}, test={})
    perm = np.random.default_rng(5).permutation(16)
    for p in (tmp_path / "training/sleep_neu/S_3_cleaned.mat", tmp_path / "training/sleep_emo/S_3_cleaned.mat"):
        write_mat(p, files[p][:, perm], times=TIMES, ch_names=[CH_NAMES[k] for k in perm])
    ds = load_dataset(tmp_path, splits=("train",))
    assert ds.ch_names == list(CH_NAMES)  # the first file's order
    np.testing.assert_array_equal(ds.X[5:7], files[tmp_path / "training/sleep_neu/S_3_cleaned.mat"])
    np.testing.assert_array_equal(ds.X[7:], files[tmp_path / "training/sleep_emo/S_3_cleaned.mat"])
    names = list(CH_NAMES)
    names[3] = "T7"
    write_mat(tmp_path / "training/sleep_emo/S_3_cleaned.mat", make_trials(2), times=TIMES, ch_names=names)
    with pytest.raises(DataError, match=r"S_3_cleaned\.mat: channel set differs from .*S_2_cleaned\.mat's \(differing: C4, T7\)"):
        load_dataset(tmp_path, splits=("train",))


def test_load_dataset_is_memory_lean(tmp_path):
    write_folder(tmp_path, train={s: (300, 300) for s in (2, 3, 4)}, test={1: 300})
    tracemalloc.start()
    try:
        ds = load_dataset(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ds.X.nbytes == 2100 * 16 * 200 * 4
    assert peak < 2.3 * ds.X.nbytes  # the stacked array + one file's worth, not several copies


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared real data not present (only in the project's workspace)")
def test_real_shared_data():
    lay = discover(SHARED)
    assert len(lay.train) == 20 and sorted(lay.test) == [1, 7, 12]
    ds = load_dataset(SHARED)
    assert ds.X.shape[1:] == (16, 200) and ds.sfreq == 200.0
    assert ds.ch_names[:3] == ["FC3", "FC4", "C5"] and len(ds.ch_names) == 16
    assert len(ds.train.subjects) == 20 and list(ds.test.subjects) == [1, 7, 12]
    assert set(np.unique(ds.train.y)) == {0, 1} and np.isfinite(ds.X).all()
    for sid, path in lay.test.items():
        with h5py.File(path, "r") as f:
            n = f["data/trial"].shape[2]
        assert (ds.subject[ds.is_test] == sid).sum() == n
    rms = float(np.sqrt(np.mean(ds.X[:500].astype(np.float64) ** 2)))
    assert 1.0 < rms < 200.0  # microvolts
