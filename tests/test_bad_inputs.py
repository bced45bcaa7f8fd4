"""Bad input, end to end through ``python -m kit``: one clear line naming the file, exit status 2, and
nothing already written lost (earlier artifacts and submissions stay byte for byte).

Each broken data folder is a copy of a tiny simulated one with one file damaged; the command that meets
it is ``cv --method experts`` (it goes through :mod:`kit.pipeline.stages`, whose stage bookkeeping must not move
or delete earlier artifacts when the data cannot be read), ``inspect`` or ``validate``.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from kit.app import cli
from kit.app.kaggle import credentials as kcred
from kit.core.errors import SubmissionError
from kit.data.dataset import load_dataset
from kit.data.demo import write_demo_dataset
from kit.data.layout import CH_NAMES
from kit.data.mat import read_mat
from kit.data.mat_write import write_mat
from kit.pipeline.submission import write_submission
from kit.store.paths import project_root

TIMES = np.arange(200) / 200.0
EMO5 = "training/sleep_emo/S_5_cleaned.mat"  # the file each data case damages
TEST7 = "testing/test_subject_7.mat"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("bad") / "demo", scale=0.03, seed=2)


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    """An output root that already holds a finished stage and a submission (they must survive)."""
    out = tmp_path / "out"
    for tag in ("broken", "demo"):
        stage = out / "artifacts" / tag / "mae"
        stage.mkdir(parents=True)
        (stage / "stage.json").write_text('{"hash": "0123456789ab"}')
        (stage / "mae.pt").write_bytes(b"weights of an earlier run")
    (out / "submissions").mkdir()
    (out / "submissions" / "broken_quick_ensemble.csv").write_text("id,prediction\n1_0_0,0.5\n")
    monkeypatch.setenv("KIT_OUTPUT", str(out))
    monkeypatch.delenv("KIT_DATA", raising=False)
    monkeypatch.delenv("KIT_NAN_POLICY", raising=False)
    return out


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def broken_copy(demo: Path, tmp_path: Path) -> Path:
    data = tmp_path / "broken"
    shutil.copytree(demo, data)
    return data


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(result, path, *needles):
    """Exit 2, one line on stderr starting with ``error: {path}:``, no traceback."""
    code, out, err = result
    assert code == 2, (out, err)
    assert err.startswith(f"error: {path}: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in err, err
    return err


def run_module(*argv, env=None):
    env = {**os.environ, "PYTHONPATH": str(project_root()), **(env or {})}
    return subprocess.run([sys.executable, "-m", "kit", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=120)


# ----------------------------------------------------------------------------- broken .mat files
def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def renamed_struct(path: Path) -> None:
    """MATLAB v7.3, the FieldTrip struct saved under another variable name."""
    with h5py.File(path, "r+") as f:
        f.move("data", "eeg")


def cell_at_250_hz(path: Path) -> None:
    """MATLAB v5, a FieldTrip struct whose trials are a cell of (16, 250) arrays at 250 Hz."""
    rng = np.random.default_rng(1)
    cell = np.empty((1, 12), dtype=object)
    for i in range(cell.size):
        cell[0, i] = rng.normal(0, 20, (16, 250))
    path.unlink()
    scipy.io.savemat(path, {"data": {"trial": cell, "time": np.arange(250) / 250.0, "fsample": 250.0,
                                     "label": np.array(CH_NAMES, dtype=object)}})


def n_times_150(path: Path) -> None:
    write_mat(path, np.random.default_rng(2).normal(0, 20, (12, 16, 150)), times=np.arange(150) / 200.0,
              ch_names=CH_NAMES)


def n_chans_15(path: Path) -> None:
    write_mat(path, np.random.default_rng(3).normal(0, 20, (12, 15, 200)), times=TIMES, ch_names=CH_NAMES[:15])


def nan_and_inf(path: Path) -> None:
    rec = read_mat(path)
    X = rec.trials.copy()
    X[3, 2, 50:60] = np.nan  # 10 samples of trial 3, channel 2 (C3)
    X[5, 15, 0] = np.inf
    write_mat(path, X, times=rec.times, ch_names=rec.ch_names, trialinfo=rec.trialinfo)


CASES = {
    "truncated": (truncate, "truncated or corrupt MATLAB v7.3/HDF5 file"),
    "random bytes": (random_bytes, "not a readable MATLAB .mat file"),
    "struct under another name": (renamed_struct, "no struct 'data' in the file (variables found: eeg); 'eeg' "
                                                  "looks like a FieldTrip struct: save it as 'data'"),
    "cell array at 250 Hz": (cell_at_250_hz, "sampling rate 250 Hz, expected 200 Hz (resample to 200 Hz)"),
    "150 samples": (n_times_150, "150 samples per trial, expected 200 (1 s at 200 Hz)"),
    "15 channels": (n_chans_15, "15 channels, expected 16"),
    "NaN and inf": (nan_and_inf, "11 NaN/inf samples in 2 of"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_file_is_named_and_earlier_outputs_survive(case, demo, tmp_path, outputs, capsys):
    damage, needle = CASES[case]
    data = broken_copy(demo, tmp_path)
    damage(data / EMO5)
    before = snapshot(outputs)
    assert_user_error(run_cli(capsys, "cv", "--data", data, "--method", "experts", "--profile", "smoke"),
                      data / EMO5, needle)
    assert_user_error(run_cli(capsys, "inspect", data / EMO5), data / EMO5, needle)
    assert snapshot(outputs) == before  # no stage moved aside, no file rewritten
    assert not list((outputs / "artifacts").glob("*/*@*"))


def test_damaged_files_through_a_real_process(demo, tmp_path):
    data = broken_copy(demo, tmp_path)
    truncate(data / TEST7)
    sub = tmp_path / "s.csv"
    proc = run_module("validate", sub, "--data", data)  # reading the test files comes first
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {data / TEST7}: truncated or corrupt MATLAB v7.3/HDF5 file")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    random_bytes(data / EMO5)
    proc = run_module("inspect", data)
    assert proc.returncode == 2 and proc.stderr.startswith(f"error: {data / EMO5}: not a readable MATLAB .mat file")


def test_nan_samples_say_how_many_and_where_and_repair_on_request(demo, tmp_path, outputs, capsys, monkeypatch):
    data = broken_copy(demo, tmp_path)
    nan_and_inf(data / TEST7)
    n = len(read_mat(data / TEST7, nan_policy="zero").trials)
    err = assert_user_error(run_cli(capsys, "validate", tmp_path / "none.csv", "--data", data), data / TEST7)
    assert f"11 NaN/inf samples in 2 of {n} trials (first: trial 3, channel 2 C3)" in err
    assert "nan_policy='interpolate'" in err and "KIT_NAN_POLICY" in err

    clean = read_mat(demo / TEST7).trials
    zero = load_dataset(data, splits=("test",), nan_policy="zero")
    interp = load_dataset(data, splits=("test",), nan_policy="interpolate")
    rows = zero.subject == 7
    Xz, Xi = zero.X[rows], interp.X[rows]
    assert np.all(Xz[3, 2, 50:60] == 0) and Xz[5, 15, 0] == 0
    ramp = np.linspace(clean[3, 2, 49], clean[3, 2, 60], 12)[1:-1]
    np.testing.assert_allclose(Xi[3, 2, 50:60], ramp, rtol=1e-5, atol=1e-4)
    assert Xi[5, 15, 0] == clean[5, 15, 1]  # before the first good sample: its value
    untouched = np.ones(Xz.shape, bool)
    untouched[3, 2, 50:60] = untouched[5, 15, 0] = False
    np.testing.assert_array_equal(Xz[untouched], clean[untouched])

    # the explicit option through the command line: the environment variable
    te = load_dataset(data, splits=("test",), nan_policy="zero")
    sub = write_submission(tmp_path / "s.csv", np.full((len(te), 200), 0.5), te.subject, te.trial)
    proc = run_module("validate", sub, "--data", data, env={"KIT_NAN_POLICY": "interpolate"})
    assert proc.returncode == 0 and proc.stdout.startswith("OK: "), proc.stderr
    code, out, err = run_cli(capsys, "inspect", data / TEST7)
    assert code == 2
    monkeypatch.setenv("KIT_NAN_POLICY", "drop")
    assert run_cli(capsys, "inspect", data / TEST7)[2] == \
        "error: KIT_NAN_POLICY='drop': expected one of raise, zero, interpolate\n"


# ----------------------------------------------------------------------------- broken folders
def test_empty_and_missing_folders(tmp_path, outputs, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(run_cli(capsys, "inspect", empty), empty, "no .mat files")
    assert_user_error(run_cli(capsys, "cv", "--data", empty, "--method", "starter"), empty,
                      "not a competition data folder (no training/ or testing/ inside)")
    (empty / "training" / "sleep_neu").mkdir(parents=True)
    (empty / "testing").mkdir()
    assert_user_error(run_cli(capsys, "cv", "--data", empty, "--method", "experts", "--profile", "smoke"), empty,
                      "no .mat files")
    missing = tmp_path / "missing"
    assert_user_error(run_cli(capsys, "inspect", missing), missing, "no such file or folder")
    assert_user_error(run_cli(capsys, "cv", "--data", missing, "--method", "experts"), missing, "does not exist")
    assert_user_error(run_cli(capsys, "validate", tmp_path / "s.csv", "--data", missing), missing, "does not exist")
    proc = run_module("inspect", missing)
    assert proc.returncode == 2 and proc.stderr == f"error: {missing}: no such file or folder\n"


def test_subject_without_its_emotional_file(demo, tmp_path, outputs, capsys):
    data = broken_copy(demo, tmp_path)
    (data / EMO5).unlink()
    before = snapshot(outputs)
    for argv in (("inspect", data), ("cv", "--data", data, "--method", "starter"),
                 ("cv", "--data", data, "--method", "experts", "--profile", "smoke")):
        assert_user_error(run_cli(capsys, *argv), data / EMO5,
                          "missing (subject 5 has a sleep_neu file but no sleep_emo file)")
    assert snapshot(outputs) == before


def test_a_mat_file_in_the_wrong_place(demo, tmp_path, capsys):
    data = broken_copy(demo, tmp_path)
    stray = data / "training" / "S_5_cleaned.mat"
    shutil.copy(data / EMO5, stray)
    assert_user_error(run_cli(capsys, "inspect", data), stray, "unexpected .mat file; expected training/sleep_neu")


# ----------------------------------------------------------------------------- broken submissions
@pytest.fixture(scope="module")
def good_submission(demo, tmp_path_factory):
    te = load_dataset(demo, splits=("test",))
    pred = np.random.default_rng(4).uniform(0, 1, (len(te), 200))
    return write_submission(tmp_path_factory.mktemp("subs") / "good.csv", pred, te.subject, te.trial)


def _edit(lines, kind):
    header, rows = lines[0], lines[1:]
    if kind == "duplicate rows":
        return [header] + rows + rows[10:12]
    if kind == "missing rows":
        return [header] + rows[:-5]
    if kind == "value above 1":
        return [header, rows[0].split(",")[0] + ",1.5"] + rows[1:]
    if kind == "value below 0":
        return [header] + rows[:7] + [rows[7].split(",")[0] + ",-0.01"] + rows[8:]
    if kind == "wrong header":
        return ["id,pred"] + rows
    if kind == "NaN":
        return [header, rows[0].split(",")[0] + ",nan"] + rows[1:]
    if kind == "text value":
        return [header, rows[0].split(",")[0] + ",high"] + rows[1:]
    if kind == "unexpected id":
        return lines + ["99_0_0,0.5"]
    raise ValueError(kind)


SUBMISSION_CASES = {
    "duplicate rows": "2 duplicate ids (first 1_0_10)",
    "missing rows": "5 missing ids of",
    "value above 1": "1 predictions outside [0, 1] (min",
    "value below 0": "1 predictions outside [0, 1] (min -0.01,",
    "wrong header": "header must be exactly 'id,prediction', got 'id,pred'",
    "NaN": "1 NaN/inf predictions (first id 1_0_0)",
    "text value": "1 unparsable predictions (first 'high' for id 1_0_0, line 2)",
    "unexpected id": "1 unexpected ids (first 99_0_0)",
}


@pytest.mark.parametrize("kind", list(SUBMISSION_CASES))
def test_malformed_submission_is_refused_before_any_upload(kind, demo, good_submission, tmp_path, capsys,
                                                            monkeypatch):
    bad = tmp_path / f"{kind.replace(' ', '_')}.csv"
    bad.write_text("\n".join(_edit(good_submission.read_text().splitlines(), kind)) + "\n")
    content = bad.read_bytes()
    monkeypatch.setattr(kcred, "find_credentials", lambda *a: pytest.fail("credentials read for an invalid file"))
    monkeypatch.setattr(kcred, "_kaggle_api_class", lambda: pytest.fail("kaggle imported for an invalid file"))
    assert_user_error(run_cli(capsys, "validate", bad, "--data", demo), bad, SUBMISSION_CASES[kind])
    assert_user_error(run_cli(capsys, "submit", bad, "-m", "x", "--data", demo), bad, SUBMISSION_CASES[kind])
    assert bad.read_bytes() == content


def test_empty_and_folder_submissions(demo, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert_user_error(run_cli(capsys, "validate", empty, "--data", demo), empty, "empty file (0 bytes)")
    assert_user_error(run_cli(capsys, "validate", tmp_path, "--data", demo), tmp_path, "a folder, not a file")
    header_only = tmp_path / "header.csv"
    header_only.write_text("id,prediction\n")
    assert_user_error(run_cli(capsys, "validate", header_only, "--data", demo), header_only, "no rows after the header")


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.__setitem__((0, 0), np.nan), "1 predictions are NaN/inf; nothing written"),
    (lambda p: p.__setitem__((1, 5), 1.01), "1 predictions outside [0, 1]"),
    (lambda p: None, "trial 1_0 appears twice; nothing written"),
])
def test_a_failed_submission_write_keeps_the_existing_file(damage, message, demo, good_submission, tmp_path):
    te = load_dataset(demo, splits=("test",))
    target = tmp_path / "submission.csv"
    shutil.copy(good_submission, target)
    content = target.read_bytes()
    pred = np.full((len(te), 200), 0.5)
    damage(pred)
    trial = te.trial.copy()
    if "twice" in message:
        trial[1] = trial[0]
    with pytest.raises(SubmissionError, match=f"^{target}: " + message.replace("[", r"\[").replace("]", r"\]")):
        write_submission(target, pred, te.subject, trial)
    assert target.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ["submission.csv"]
