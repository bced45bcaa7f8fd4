"""Tests for kit.data.demo's kinds of class effect (KINDS): the files, theta bit for bit, where each effect is."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch
from scipy.stats import ttest_ind

from kit.app.cli import main
from kit.data.demo import KINDS, simulate_subject, write_demo_dataset
from kit.data.layout import CH_NAMES, TEST_IDS, TRAIN_IDS
from kit.data.mat import read_mat

SCALE = 0.05
LABELS = np.tile([0, 1], 400)  # 800 trials, alternating classes
T = np.arange(200) / 200.0


def chans(*names):
    return [CH_NAMES.index(c) for c in names]


CENTRO_PARIETAL = chans("Cz", "CP3", "CP4", "Pz")
FRONTO_CENTRAL = chans("F3", "F4", "C3", "C4", "Cz")
LEFT, RIGHT = chans("C3", "C5", "CP3", "CP5"), chans("C4", "C6", "CP4", "CP6")
SOS = {"low": butter(4, 4.0, btype="low", fs=200, output="sos"),
       "theta": butter(4, [4.0, 8.0], btype="band", fs=200, output="sos"),
       "mu_beta": butter(4, [8.0, 30.0], btype="band", fs=200, output="sos")}


def tstat(values, labels):
    """Welch t of emotional minus neutral."""
    return float(ttest_ind(values[labels == 1], values[labels == 0], equal_var=False).statistic)


def erp_measure(X):
    """Mean of the < 4 Hz signal over 0.45-0.65 s at centro-parietal channels: (n_trials,) µV."""
    return sosfiltfilt(SOS["low"], X[:, CENTRO_PARIETAL].astype(np.float64), axis=-1)[:, :, 90:130].mean(axis=(1, 2))


def theta_measure(X):
    """Log 4-8 Hz power over 0.4-0.6 s at fronto-central channels: (n_trials,)."""
    xb = sosfiltfilt(SOS["theta"], X[:, FRONTO_CENTRAL].astype(np.float64), axis=-1)
    return np.log((xb[:, :, 80:120] ** 2).mean(axis=(1, 2)))


def mu_beta_measure(X, window):
    """Log 8-30 Hz power over ``window`` (samples) of the left and of the right central channels: 2 x (n_trials,)."""
    xb = sosfiltfilt(SOS["mu_beta"], X.astype(np.float64), axis=-1)
    p = np.log((xb[:, :, window[0]:window[1]] ** 2).mean(axis=-1))
    return p[:, LEFT].mean(axis=1), p[:, RIGHT].mean(axis=1)


def strongest(kind):
    """The training subject with the largest effect ``r`` of ``kind`` (seed 0)."""
    rs = [simulate_subject(0, sid, LABELS[:16], kind=kind)[1]["r"] for sid in TRAIN_IDS]
    return TRAIN_IDS[int(np.argmax(rs))]


def arrays(root):
    return {p.relative_to(root): read_mat(p).trials for p in sorted(root.rglob("*.mat"))}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    out = {kind: write_demo_dataset(root / kind, scale=SCALE, seed=0, kind=kind) for kind in KINDS}
    out["default"] = write_demo_dataset(root / "default", scale=SCALE, seed=0)
    return out


def test_each_kind_writes_its_folder(folders):
    assert KINDS == ("theta", "evoked", "lateral", "signflip", "null")
    shapes = None
    for kind in KINDS + ("default",):
        meta = json.loads((folders[kind] / "demo.json").read_text())
        assert meta["kind"] == ("theta" if kind == "default" else kind)
        got = {k: v.shape for k, v in arrays(folders[kind]).items()}
        assert len(got) == 2 * len(TRAIN_IDS) + len(TEST_IDS)
        assert shapes is None or got == shapes  # same counts for every kind
        shapes = got
    evoked = json.loads((folders["evoked"] / "demo.json").read_text())
    assert len(evoked["subject_evoked_amplitude_ratio"]) == 17 and "subject_theta_power_ratio" not in evoked
    flip = json.loads((folders["signflip"] / "demo.json").read_text())["subject_theta_power_ratio"]
    assert sum(v > 1 for v in flip.values()) == 10 and sum(v < 1 for v in flip.values()) == 7  # 8+2 up, 6+1 down


def test_theta_kind_is_the_default_bit_for_bit(folders):
    a, b = arrays(folders["theta"]), arrays(folders["default"])
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert (folders["theta"] / "test_labels.csv").read_bytes() == (folders["default"] / "test_labels.csv").read_bytes()
    assert json.loads((folders["theta"] / "demo.json").read_text()) == \
        json.loads((folders["default"] / "demo.json").read_text())
    X0, _ = simulate_subject(1, 5, LABELS[:60])
    X1, info = simulate_subject(1, 5, LABELS[:60], kind="theta")
    np.testing.assert_array_equal(X0, X1)
    assert info["kind"] == "theta"


def test_null_and_signflip_share_the_theta_background():
    labels = LABELS[:100]
    theta0, _ = simulate_subject(0, 3, labels, effect=0.0)
    null, info = simulate_subject(0, 3, labels, kind="null")
    np.testing.assert_array_equal(null, theta0)  # null = theta without effect
    assert info["r"] == 0.0
    flip, info = simulate_subject(0, 3, labels, kind="signflip")
    np.testing.assert_array_equal(flip[labels == 0], theta0[labels == 0])  # only emotional trials change
    assert not np.array_equal(flip[labels == 1], theta0[labels == 1]) and info["r"] != 0.0


def test_unknown_kind(tmp_path, capsys):
    with pytest.raises(ValueError, match="kind must be one of theta, evoked"):
        simulate_subject(0, 2, LABELS[:16], kind="alpha")
    with pytest.raises(ValueError, match="kind must be one of"):
        write_demo_dataset(tmp_path / "d", scale=SCALE, kind="alpha")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as exc:
        main(["demo-data", str(tmp_path / "d"), "--kind", "alpha"])
    assert exc.value.code == 2 and "invalid choice: 'alpha'" in capsys.readouterr().err
    assert main(["demo-data", str(tmp_path / "d"), "--kind", "lateral", "--scale", "0.02"]) == 0
    assert "kind lateral" in capsys.readouterr().out
    assert json.loads((tmp_path / "d" / "demo.json").read_text())["kind"] == "lateral"


def test_evoked_is_a_late_phase_locked_wave():
    sid = strongest("evoked")
    X, info = simulate_subject(0, sid, LABELS, kind="evoked")
    null, _ = simulate_subject(0, sid, LABELS, kind="null")
    assert info["r"] > 0.5
    # what the kind adds (same background as null): a slow wave at 0.35-0.8 s, centro-parietal, in both classes
    D = (X - null).astype(np.float64)
    energy = (D ** 2).sum(axis=(0, 1))
    assert energy[(T > 0.35) & (T < 0.8)].sum() > 0.95 * energy.sum()
    f, P = welch(D, fs=200, nperseg=200, axis=-1)
    assert P.sum(axis=(0, 1))[f < 4].sum() > 0.95 * P.sum()
    topo = np.abs(D[:, :, 110]).mean(axis=0)
    assert CH_NAMES[int(np.argmax(topo))] in ("Cz", "CP3", "CP4", "Pz")
    assert topo[chans("Cz", "Pz")].mean() > 2 * topo[chans("O1", "O2")].mean()
    amp = D[:, :, 90:130].mean(axis=(1, 2))
    assert (amp[LABELS == 0] > 0).mean() > 0.95  # present (positive) in neutral trials too
    ratio = amp[LABELS == 1].mean() / amp[LABELS == 0].mean()
    assert abs(np.log(ratio) - info["r"]) < 0.15  # emotional amplitude x exp(r)
    # on the simulated arrays: the trial-averaged slow signal differs by class, theta power does not
    assert tstat(erp_measure(X), LABELS) > 5
    assert abs(tstat(theta_measure(X), LABELS)) < 2.5
    # effect=0: the wave stays, equally large in both classes
    X0, _ = simulate_subject(0, sid, LABELS, kind="evoked", effect=0.0)
    amp0 = (X0 - null)[:, :, 90:130].mean(axis=(1, 2))
    assert abs(np.log(amp0[LABELS == 1].mean() / amp0[LABELS == 0].mean())) < 0.1


def test_lateral_is_a_left_right_mu_beta_contrast():
    sid = strongest("lateral")
    X, info = simulate_subject(0, sid, LABELS, kind="lateral")
    null, _ = simulate_subject(0, sid, LABELS, kind="null")
    assert info["r"] > 0.3
    f, P = welch((X - null).astype(np.float64), fs=200, nperseg=200, axis=-1)
    P = P.sum(axis=0)
    assert P[:, (f >= 8) & (f <= 30)].sum() > 0.95 * P.sum()  # the added rhythms are mu/beta
    assert P[LEFT + RIGHT].sum() > 0.6 * P.sum() and P[chans("F3", "F4", "O1", "O2")].sum() < 0.05 * P.sum()
    left, right = mu_beta_measure(X, (80, 200))  # 0.4-1.0 s
    assert tstat(left, LABELS) < -3 and tstat(right, LABELS) > 3  # emotional: left down, right up
    assert tstat(left - right, LABELS) < -6
    left0, right0 = mu_beta_measure(X, (0, 40))  # 0-0.2 s: before the onset
    assert abs(tstat(left0 - right0, LABELS)) < 2.5
    assert abs(tstat(theta_measure(X), LABELS)) < 2.5


def per_subject_theta_t(kind, ids=TRAIN_IDS, n=300):
    labels = LABELS[:n]
    out = []
    for sid in ids:
        X, info = simulate_subject(0, sid, labels, kind=kind)
        out.append((info["r"], tstat(theta_measure(X), labels)))
    return np.array(out)


def test_signflip_signs_differ_between_subjects():
    rt = per_subject_theta_t("signflip", n=600)
    r, t = rt[:, 0], rt[:, 1]
    assert (r > 0).sum() == 8 and (r < 0).sum() == 6
    assert (t > 3).sum() >= 3 and (t < -3).sum() >= 3  # both signs, each clearly
    assert np.all(np.sign(t[np.abs(t) > 3]) == np.sign(r[np.abs(t) > 3]))
    assert np.corrcoef(r, t)[0, 1] > 0.8
    rs = [simulate_subject(0, sid, LABELS[:16], kind="signflip")[1]["r"] for sid in TEST_IDS]
    assert sum(x > 0 for x in rs) == 2


def test_null_has_no_difference():
    t = per_subject_theta_t("null")[:, 1]
    assert np.all(np.abs(t) < 3) and abs(t.mean()) < 1.0
    t_theta = per_subject_theta_t("theta")[:, 1]  # the same measure finds the theta kind's effect
    assert (t_theta > 3).sum() >= 4 and t_theta.mean() > 1.5
