"""python -m kit: user errors are one line with exit 2; inspect, validate, score, cv and run work on demo data."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kit.app import cli
from kit.data.dataset import load_dataset
from kit.data.demo import write_demo_dataset
from kit.eval.cv import loso_score
from kit.eval.metric import competition_score
from kit.methods.registry import run_baseline
from kit.pipeline.submission import read_labels, write_submission
from kit.store.paths import project_root


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo_dataset(tmp_path_factory.mktemp("cli") / "demo", scale=0.03, seed=3)


@pytest.fixture(scope="module")
def submission(demo, tmp_path_factory):
    """A valid submission for the demo's test trials: noisy copies of the true labels."""
    te = load_dataset(demo, splits=("test",))
    subject, trial, label = read_labels(demo / "test_labels.csv")
    lab = {(s, t): v for s, t, v in zip(subject, trial, label)}
    y = np.array([lab[(s, t)] for s, t in zip(te.subject, te.trial)])
    rng = np.random.default_rng(0)
    pred = np.clip(0.5 + 0.3 * (y[:, None] - 0.5) + rng.normal(0, 0.2, (len(y), 200)), 0, 1)
    path = tmp_path_factory.mktemp("sub") / "sub.csv"
    write_submission(path, pred, te.subject, te.trial)
    return path, pred, y, te


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, out, err, *needles):
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out
    for needle in needles:
        assert needle in err, err


def run_module(*argv, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(project_root())}
    return subprocess.run([sys.executable, "-m", "kit", *map(str, argv)], capture_output=True, text=True,
                          cwd=cwd or project_root(), env=env, timeout=120)


# ----------------------------------------------------------------------------- errors
def test_missing_folder(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    assert_user_error(*run_cli(capsys, "inspect", missing), str(missing), "no such file or folder")
    assert_user_error(*run_cli(capsys, "cv", "--data", missing, "--method", "starter"), str(missing))
    assert_user_error(*run_cli(capsys, "validate", tmp_path / "s.csv", "--data", missing), str(missing))


def test_corrupt_mat_in_process_and_subprocess(capsys, tmp_path):
    bad = tmp_path / "S_2_cleaned.mat"
    bad.write_bytes(b"MATLAB 7.3 MAT-file, garbage" + bytes(range(256)) * 4)
    assert_user_error(*run_cli(capsys, "inspect", bad), str(bad))
    proc = run_module("inspect", bad)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {bad}") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_malformed_submission(capsys, demo, tmp_path):
    sub = tmp_path / "bad.csv"
    sub.write_text("id,prediction\n1_0_0,0.5\n1_0_0,0.7\n")
    assert_user_error(*run_cli(capsys, "validate", sub, "--data", demo), str(sub), "duplicate")
    sub.write_text("ID;pred\n1_0_0;0.5\n")
    proc = run_module("validate", sub, "--data", demo)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"error: {sub}") and proc.stderr.count("\n") == 1, proc.stderr
    assert_user_error(*run_cli(capsys, "submit", sub, "-m", "x", "--data", demo, "--dry-run"), str(sub))


def test_other_user_errors(capsys, demo, tmp_path):
    assert_user_error(*run_cli(capsys, "demo-data", demo, "--scale", "0.03"), str(demo))  # exists, no --overwrite
    assert_user_error(*run_cli(capsys, "run", "--notebooks", "99_nope"), "99_nope")
    assert_user_error(*run_cli(capsys, "run", "--profile", "huge"), "'huge'")
    assert_user_error(*run_cli(capsys, "cv", "--data", demo, "--method", "starter", "--profile", "huge"), "'huge'")
    assert_user_error(*run_cli(capsys, "score", tmp_path / "none.csv", "--labels", demo / "test_labels.csv"),
                      "none.csv")
    assert_user_error(*run_cli(capsys, "cv", "--data", demo, "--method", "magic"), "'magic'")


def test_unexpected_exceptions_keep_their_traceback(monkeypatch, demo):
    def broken(args):
        raise ValueError("a bug")

    from kit.app import describe

    monkeypatch.setattr(describe, "describe_folder", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["inspect", str(demo)])


# ----------------------------------------------------------------------------- commands
def test_inspect_folder_and_file(capsys, demo):
    counts = json.loads((demo / "demo.json").read_text())["train_counts"]
    code, out, err = run_cli(capsys, "inspect", demo)
    assert code == 0 and err == ""
    rows = {int(w[0]): w for w in map(str.split, out.splitlines()[2:]) if len(w) > 1 and w[1] in ("train", "test")}
    assert len(rows) == 17
    for sid, (n_neu, n_emo) in counts.items():
        assert rows[int(sid)][1:5] == ["train", str(n_neu), str(n_emo), str(n_neu + n_emo)]
    assert rows[12][1] == "test"
    n_train = sum(a + b for a, b in counts.values())
    assert f"14 training subjects ({n_train} trials), 3 test subjects" in out
    assert "channels: F3 F4 C3 C4 Cz C5 C6 CP3 CP4 CP5 CP6 P7 P8 Pz O1 O2" in out

    sid, (n_neu, _) = next(iter(counts.items()))
    code, out, _ = run_cli(capsys, "inspect", demo / "training" / "sleep_neu" / f"S_{sid}_cleaned.mat")
    assert code == 0
    assert f"{n_neu} trials x 16 channels x 200 samples, float32" in out
    assert "200 Hz" in out and "0.000 to 0.995 s" in out


def test_validate_and_score(capsys, demo, submission):
    path, pred, y, te = submission
    code, out, _ = run_cli(capsys, "validate", path, "--data", demo)
    assert code == 0 and out.strip() == f"OK: {len(te) * 200} rows, {len(te)} test trials"
    code, out, _ = run_cli(capsys, "score", path, "--labels", demo / "test_labels.csv")
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    ref = competition_score(pred, y, te.subject)
    assert result["score"] == pytest.approx(ref.score, abs=1e-6)
    assert result["window"] == [ref.start, ref.stop]
    assert set(result["per_subject_auc"]) == {"1", "7", "12"}
    assert out.startswith(f"score {ref.score:.4f}")
    code, out, _ = run_cli(capsys, "submit", path, "-m", "test", "--data", demo, "--dry-run")
    assert code == 0 and "would run: kaggle competitions submit -c predicting-emotions-using-brain-waves" in out


def test_cv_starter_prints_json_last(capsys, demo):
    code, out, err = run_cli(capsys, "cv", "--data", demo, "--method", "starter")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert {"method", "loso_score", "window", "per_subject_auc", "mean_auc"} <= set(result)
    assert result["method"] == "starter"
    assert len(result["window"]) == 2 and len(result["per_subject_auc"]) == 14
    tr = load_dataset(demo, splits=("train",))
    oof, _ = run_baseline("starter", tr.X, tr.y, tr.subject, sfreq=tr.sfreq)
    assert result["loso_score"] == pytest.approx(loso_score(oof, tr.y, tr.subject)["loso_score"], abs=1e-12)
    if result["window"][0] is None:
        assert result["loso_score"] == 0.5
    else:
        assert result["window"][1] - result["window"][0] >= 9 and result["loso_score"] > 0.5


def test_run_reports_submission_and_time(capsys, monkeypatch, tmp_path):
    from kit.app import runner

    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path))
    data = tmp_path / "mydata"
    (data / "training").mkdir(parents=True)
    seen = {}

    def fake_run(names, *, data, profile, timeout):
        seen.update(names=list(names), data=data, profile=profile)
        sub = tmp_path / "submissions" / "mydata_full_ensemble.csv"
        sub.parent.mkdir(parents=True)
        sub.write_text("id,prediction\n")
        (tmp_path / "submissions" / "newer.csv").write_text("id,prediction\n")  # not this run's: never reported
        (tmp_path / "artifacts" / "mydata" / "ensemble").mkdir(parents=True)
        table = [{"method": "thetacov", "loso_score": 0.61, "window": "0-199", "mean_auc": 0.61},
                 {"method": "ensemble", "loso_score": 0.62, "window": "0-199", "mean_auc": 0.62}]
        (tmp_path / "artifacts" / "mydata" / "ensemble" / "result.json").write_text(
            json.dumps({"submission": str(sub), "table": table, "blend": "1.00 thetacov; broadcast"}))
        return [runner.NotebookRun(n, tmp_path / f"{n}.ipynb", 1.0) for n in names]

    monkeypatch.setattr(runner, "run_notebooks", fake_run)
    code, out, _ = run_cli(capsys, "run", "--profile", "full", "--data", data)
    assert code == 0
    assert seen == {"names": list(runner.NOTEBOOKS), "data": str(data), "profile": "full"}
    assert f"submission: {tmp_path / 'submissions' / 'mydata_full_ensemble.csv'}" in out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.split()[:1] in (["thetacov"], ["ensemble"])}
    assert rows == {"thetacov": ["0.61", "0-199", "0.61"], "ensemble": ["0.62", "0-199", "0.62"]}  # notebook 05's LOSO table
    assert out.strip().splitlines()[-1].startswith("total wall time:")
