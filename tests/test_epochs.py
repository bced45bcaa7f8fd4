"""Dataset.to_epochs / dataset_from_epochs: the competition data in MNE-Python and back."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from kit.core.errors import KitError
from kit.data.dataset import EVENT_ID, Dataset, dataset_from_epochs, load_dataset
from kit.data.demo import write_demo_dataset


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = write_demo_dataset(tmp_path_factory.mktemp("epochs") / "demo", scale=0.03, seed=2)
    return load_dataset(root)


def test_epochs_hold_volts_events_montage_and_metadata(small):
    ep = small.to_epochs()
    n_trials, n_chans, n_times = small.X.shape
    assert ep.get_data().shape == (n_trials, n_chans, n_times)
    np.testing.assert_allclose(ep.get_data()[3, 5], small.X[3, 5].astype(np.float64) * 1e-6, rtol=1e-12)
    assert ep.ch_names == small.ch_names and ep.info["sfreq"] == small.sfreq
    assert ep.tmin == pytest.approx(small.times[0]) and ep.baseline is None
    pos = ep.get_montage().get_positions()["ch_pos"]
    assert set(pos) == set(small.ch_names)
    codes = ep.events[:, 2]
    assert ((codes == EVENT_ID["emotional"]) == (small.y == 1)).all()
    assert ((codes == EVENT_ID["unlabelled"]) == small.is_test).all()
    assert len(ep["emotional"]) == int((small.y == 1).sum()) and len(ep["neutral"]) == int((small.y == 0).sum())
    meta = ep.metadata
    assert list(meta.columns) == ["subject", "trial", "split", "label"]
    assert (meta["subject"].to_numpy() == small.subject).all() and (meta["trial"].to_numpy() == small.trial).all()
    assert (meta["split"].to_numpy() == np.where(small.is_test, "test", "train")).all()
    # mne's own query language on the metadata
    assert len(ep[f"subject == {small.subjects[0]} and split == 'train'"]) == int(
        ((small.subject == small.subjects[0]) & ~small.is_test).sum())


def test_round_trip_is_exact_in_memory_and_through_a_double_fif(small, tmp_path):
    ep = small.to_epochs()
    path = tmp_path / "demo-epo.fif"
    ep.save(path, fmt="double", verbose="error")
    for back in (dataset_from_epochs(ep), dataset_from_epochs(mne.read_epochs(path, verbose="error"))):
        for field in ("X", "y", "subject", "trial", "is_test", "times"):
            assert np.array_equal(getattr(back, field), getattr(small, field)), field
        assert back.X.dtype == np.float32 and back.ch_names == small.ch_names and back.sfreq == small.sfreq
    assert dataset_from_epochs(mne.read_epochs(path, verbose="error")).root == path


def test_epochs_without_metadata_take_labels_from_event_names(small):
    ep = small.train.to_epochs()
    ep.metadata = None
    back = dataset_from_epochs(ep)
    assert np.array_equal(back.y, small.train.y) and (back.subject == 0).all()
    assert np.array_equal(back.trial, np.arange(len(back)))


def test_partial_metadata_and_no_eeg_are_errors(small):
    ep = small.train.to_epochs()
    ep.metadata = ep.metadata[["subject"]]
    with pytest.raises(KitError, match=r"lacks column\(s\) \['label', 'trial'\]"):
        dataset_from_epochs(ep)
    misc = mne.EpochsArray(np.zeros((2, 1, 10)), mne.create_info(["x"], 100.0, "misc"), verbose="error")
    with pytest.raises(KitError, match="no EEG channel"):
        dataset_from_epochs(misc)


def test_a_channel_outside_the_template_is_named():
    ds = Dataset(X=np.zeros((2, 2, 10), np.float32), y=np.array([0, 1], np.int8), subject=np.zeros(2, np.int64),
                 trial=np.arange(2), is_test=np.zeros(2, bool), sfreq=100.0, times=np.arange(10) / 100.0,
                 ch_names=["Cz", "XYZ"], root=Path("x"))
    with pytest.raises(KitError, match=r"\['XYZ'\]"):
        ds.to_epochs()
