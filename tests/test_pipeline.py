"""The main job end to end: `python -m kit run` executes notebooks 01-05 and writes a valid submission.

Runs on a tiny simulated data folder with the ``smoke`` profile (every stage does its real work on
real arrays, with few steps), in a temporary output root.
"""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from kit.core.errors import KitError
from kit.data.demo import write_demo_dataset
from kit.eval.metric import competition_score
from kit.pipeline import stages as pipeline
from kit.pipeline.submission import read_labels, score_submission, validate_submission

STAGES = ("starter", "thetacov", "bandpower", "riemann", "mae", "experts", "fusion", "fusion_lda", "ensemble")


@pytest.fixture(scope="module")
def finished_run(smoke_run):
    """The session's smoke run (tests/conftest.py)."""
    return smoke_run


def test_run_writes_every_stage_and_a_valid_submission(finished_run):
    data, out, stdout = finished_run
    art = out / "artifacts" / "demo"
    for stage in STAGES:
        assert (art / stage / "stage.json").exists() or stage == "ensemble", stage
    assert (art / "mae" / "mae.pt").exists()
    n_subjects = len(pd.read_csv(art / "folds.csv"))
    assert n_subjects == 14
    assert len(list((art / "experts").glob("fold*_seed0.pt"))) == 14
    assert len(list((art / "fusion").glob("fold*.pt"))) == len(list((art / "fusion_lda").glob("fold*_lda.pt"))) == 14
    for name in ("01_eda_theta_power", "02_mae_pretraining", "03_fomaml_experts", "04_fusion", "05_ensembling"):
        assert (out / "reports" / "runs" / f"{name}.ipynb").exists()
    assert len(list((out / "reports" / "figures").glob("*.png"))) >= 8
    sub = out / "submissions" / "demo_smoke_ensemble.csv"
    assert str(sub) in stdout
    run = pipeline.Run(data, "smoke", verbose=False)
    te = run.test
    df = validate_submission(sub, subject=te.subject, trial=te.trial)
    assert len(df) == len(te) * 200
    ws = score_submission(sub, data / "test_labels.csv")
    # the file's score is the metric on the ensemble stage's stored test predictions (float32 -> csv rounding aside)
    ens = np.load(art / "ensemble" / "predictions.npz")
    subject, trial, label = read_labels(data / "test_labels.csv")
    row = {(s, t): i for i, (s, t) in enumerate(zip(ens["test_subject"], ens["test_trial"]))}
    pred = ens["test"][[row[(s, t)] for s, t in zip(subject, trial)]]
    ref = competition_score(pred, label, subject)
    assert ws.score == pytest.approx(ref.score, abs=1e-4) and (ws.start, ws.stop) == (ref.start, ref.stop)


def test_stage_predictions_align_with_the_data(finished_run, monkeypatch):
    data, out, _ = finished_run
    monkeypatch.setenv("KIT_OUTPUT", str(out))
    run = pipeline.Run(data, "smoke", verbose=False)
    comps = pipeline.load_components(run)
    assert set(comps) == set(pipeline.ENSEMBLE_COMPONENTS)
    n_train, n_test = len(run.train), len(run.test)
    for name, c in comps.items():
        assert c["oof"].shape == (n_train, 200), name
        assert c["test"].shape == (n_test, 200), name
        assert np.isfinite(c["oof"]).all() and ((c["oof"] >= 0) & (c["oof"] <= 1)).all(), name
    result = json.loads((out / "artifacts" / "demo" / "ensemble" / "result.json").read_text())
    assert [r["method"] for r in result["table"]] == [*pipeline.ENSEMBLE_COMPONENTS, "ensemble"]
    from kit.pipeline.ensemble import EnsembleConfig

    assert set(result["rules"]) == {"grid", *EnsembleConfig().compare} and result["rule"] == "grid"
    table = {r["method"]: r["loso_score"] for r in result["table"]}
    assert result["rules"]["grid"] == pytest.approx(table["ensemble"], abs=1e-4)  # the submission's rule
    assert [r["subject"] for r in result["per_subject"]] == sorted(set(run.train.subject.tolist()))
    d, lo, hi = result["difference"]
    assert result["best_component"] == max(pipeline.ENSEMBLE_COMPONENTS, key=table.get)
    assert lo <= d <= hi and d == pytest.approx(table["ensemble"] - table[result["best_component"]], abs=2e-4)


def test_fusion_inputs_read_back_equal_the_computed_ones(finished_run, monkeypatch):
    """Notebook 04 reads stage 04's inputs.npz; the same arrays as computing them again, bit for bit."""
    from kit.deep.channel_fusion import fusion_inputs

    data, out, _ = finished_run
    monkeypatch.setenv("KIT_OUTPUT", str(out))
    run = pipeline.Run(data, "smoke", verbose=False)
    cfg = pipeline.stage_config("fusion", "smoke")
    assert (out / "artifacts" / "demo" / "fusion" / "inputs.npz").is_file()
    read = pipeline.fusion_stage_inputs(run, cfg)
    ds = run.dataset
    again = fusion_inputs(run.features, ds.X, ds.subject, ds.sfreq, run.artifacts / "mae" / "mae.pt", cfg)
    assert read["seq"].shape[0] == read["cov"].shape[0] == read["tangent"].shape[0] == len(ds.y)
    for k in ("seq", "cov", "tangent"):
        assert np.array_equal(np.asarray(read[k]), np.asarray(again[k])), k
    other = pipeline.fusion_stage_inputs(run, dataclasses.replace(cfg, use_tokens=False))  # not what the stage read
    assert other["seq"] is None and np.array_equal(other["tangent"], again["tangent"])


def test_rerun_skips_finished_stages_and_cv_reports_json(finished_run, monkeypatch, caplog):
    data, out, _ = finished_run
    monkeypatch.setenv("KIT_OUTPUT", str(out))
    mtime = (out / "artifacts" / "demo" / "experts" / "predictions.npz").stat().st_mtime_ns
    with caplog.at_level("INFO", logger="kit"):
        res = pipeline.cv_method("fusion", data=data, profile="smoke")
    assert (out / "artifacts" / "demo" / "experts" / "predictions.npz").stat().st_mtime_ns == mtime
    assert "[fusion] artifacts match config" in caplog.text and "skipped" in caplog.text
    assert set(res) >= {"method", "loso_score", "window", "per_subject_auc"}
    assert len(res["per_subject_auc"]) == 14


def test_stages_refuse_to_run_out_of_order(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path / "out"))
    data = write_demo_dataset(tmp_path / "demo", scale=0.03, seed=4)
    run = pipeline.Run(data, "smoke", verbose=False)
    with pytest.raises(KitError, match="run notebook 02"):
        pipeline.run_experts_stage(run)
    with pytest.raises(KitError, match="run notebook 02"):
        pipeline.run_fusion_stage(run)
    with pytest.raises(KitError, match="run notebook 03"):
        pipeline.run_fusion_lda_stage(run)
    with pytest.raises(KitError, match="unknown profile"):
        pipeline.Run(data, "fast")


def test_full_profile_sizes_run_end_to_end_on_tiny_data_on_the_cpu(tmp_path, monkeypatch):
    """The ``full`` profile (3rd-place sizes, 200 samples, 3 seeds), with its step counts cut, on the CPU."""
    from dataclasses import replace

    monkeypatch.setenv("KIT_DEVICE", "cpu")
    data = write_demo_dataset(tmp_path / "demo", scale=0.02, seed=4)
    run = pipeline.Run(data, "full", artifacts=tmp_path / "art", verbose=False)
    mae = replace(pipeline.stage_config("mae", "full"), epochs=1, sequences_per_epoch=256)
    assert (mae.pool, mae.d_model, mae.n_layers, mae.d_ff) == (1, 16, 3, 128)
    pipeline.run_mae_stage(run, mae)
    cfg = replace(pipeline.stage_config("experts", "full"), max_steps=2, eval_every=1, n_support=4, n_query=4)
    assert cfg.n_seeds == 3
    e = pipeline.run_experts_stage(run, cfg)
    n_train = len(run.train)
    assert e["oof_course"].shape == (n_train, 16, 200) and e["steps"].shape == (14, 3)
    assert len(list((tmp_path / "art" / "experts").glob("fold*_seed*.pt"))) == 14 * 3
    f = pipeline.run_fusion_stage(run, replace(pipeline.stage_config("fusion", "full"), epochs=1))
    assert f["oof"].shape == (n_train, 200) and f["test"].shape == (len(run.test), 200)
    assert np.isfinite(f["oof"]).all() and np.isfinite(f["test"]).all()


def _copy_test_files(src, dst, transform):
    """``dst/testing/`` with each of ``src``'s test files rewritten as ``transform(trials, ch_names)``."""
    from kit.data.mat import read_mat
    from kit.data.mat_write import write_mat

    for path in sorted((src / "testing").glob("*.mat")):
        rec = read_mat(path)
        trials, names = transform(rec.trials, list(rec.ch_names))
        write_mat(dst / "testing" / path.name, trials, times=rec.times, ch_names=names, sfreq=rec.sfreq)
    return dst


def test_predict_reproduces_the_run_submission_bit_for_bit(finished_run, monkeypatch, tmp_path, capsys):
    """`kit predict` on the run's own folder, and on a copy with the channels in another order."""
    from kit.app.cli import main
    from kit.pipeline.predict import predict_folder

    data, out, _ = finished_run
    monkeypatch.setenv("KIT_OUTPUT", str(out))
    art = out / "artifacts" / "demo"
    assert all((art / a / "models.pkl").is_file() for a in ("starter", "thetacov", "bandpower", "eegnet"))
    assert (art / "ensemble" / "blend.json").is_file()
    ref = (out / "submissions" / "demo_smoke_ensemble.csv").read_bytes()
    assert main(["predict", "--data", str(data)]) == 0
    assert "valid submission" in capsys.readouterr().out
    assert (out / "submissions" / "demo_predict.csv").read_bytes() == ref
    shuffled = _copy_test_files(data, tmp_path / "shuffled", lambda X, names: (X[:, ::-1], names[::-1]))
    path = predict_folder(shuffled, art, out=tmp_path / "shuffled.csv")
    assert path.read_bytes() == ref  # channels are put back in the training order


def test_predict_refuses_other_channels_and_missing_artifacts(finished_run, monkeypatch, tmp_path, capsys):
    from kit.app.cli import main

    data, out, _ = finished_run
    monkeypatch.setenv("KIT_OUTPUT", str(out))
    fewer = _copy_test_files(data, tmp_path / "fewer", lambda X, names: (X, ["Fp1", *names[1:]]))  # F3 -> Fp1
    before = sorted(p.name for p in (out / "submissions").iterdir())
    assert main(["predict", "--data", str(fewer), "--artifacts", str(out / "artifacts" / "demo")]) == 2
    err = capsys.readouterr().err
    assert "channels Fp1 F4" in err and "were trained on F3 F4" in err and len(err.strip().splitlines()) == 1
    assert main(["predict", "--data", str(data), "--artifacts", str(tmp_path / "none")]) == 2
    assert "blend.json: not found" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "submissions").iterdir()) == before  # nothing written on error
