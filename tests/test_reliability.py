"""Reliability: bit-identical reruns, stage skipping and forcing, stale stages moved aside, checkpoints that
refuse another config or version, resumed training, atomic writes that survive a crash.

The pipeline runs through :mod:`kit.pipeline.stages` on a tiny simulated data folder with the ``smoke`` profile,
its deep stages shrunk further (:data:`TINY`) to keep the file well under a minute and a half.
"""

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kit import __version__ as KIT_VERSION
from kit.core.errors import CheckpointError, SubmissionError
from kit.data.demo import write_demo_dataset
from kit.deep import experts_loso as experts
from kit.deep.mae import load_mae, pretrain_mae
from kit.methods.registry import ANCHORS, ENSEMBLE_COMPONENTS
from kit.pipeline import stages as pipeline
from kit.pipeline.profiles import stage_config
from kit.pipeline.submission import write_submission
from kit.store import artifacts
from kit.store.artifacts import atomic_write, config_hash, load_checkpoint, save_checkpoint
from kit.store.paths import project_root

TINY = {"mae": dict(n_layers=1, d_ff=16, sequences_per_epoch=256),
        "experts": dict(max_steps=2, eval_every=1, n_support=4, n_query=4, meta_batch=1),
        "fusion": dict(epochs=1)}
"""Overrides of the smoke profile: every stage still trains, predicts and writes its files."""
BASELINES = tuple(c for c in ENSEMBLE_COMPONENTS if c in ANCHORS)
"""The classical components notebook 05 blends (EEGNet, minutes on a CPU, is not among them)."""
STAGES = BASELINES + ("mae", "experts", "fusion", "ensemble")


def tiny(stage: str, **overrides):
    """The smoke profile's config of ``stage`` with :data:`TINY` and ``overrides`` applied."""
    return dataclasses.replace(stage_config(stage, "smoke"), **{**TINY.get(stage, {}), **overrides})


def run_all(data, *, force: bool = False, verbose: bool = False) -> Path:
    """Every stage, in order, into ``$KIT_OUTPUT``; returns the submission written."""
    run = pipeline.Run(Path(data), "smoke", verbose=verbose)
    for name in BASELINES:
        pipeline.run_baseline_stage(run, name, force=force)
    pipeline.run_mae_stage(run, tiny("mae"), force=force)
    pipeline.run_experts_stage(run, tiny("experts"), force=force)
    pipeline.run_fusion_stage(run, tiny("fusion"), force=force)
    return pipeline.run_ensemble_stage(run).submission


class Custom:
    """An arbitrary class: a checkpoint pickling it cannot be loaded with ``weights_only=True``."""


def files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same pipeline twice, at the same time: in a fresh Python process and in this one; two output roots."""
    root = tmp_path_factory.mktemp("reliability")
    data = write_demo_dataset(root / "demo", scale=0.03, seed=7)
    out_a, out_b = root / "a", root / "b"
    env = {**os.environ, "KIT_OUTPUT": str(out_a), "PYTHONPATH": str(project_root())}
    code = f"import runpy; runpy.run_path({__file__!r})['run_all']({str(data)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("KIT_OUTPUT", str(out_b))
            sub_b = run_all(data)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    return data, out_a, out_b, sub_b


@pytest.fixture
def copy_of_b(runs, tmp_path, monkeypatch):
    """A private copy of run b's outputs (the tests below change them), as ``$KIT_OUTPUT``."""
    data, _, out_b, _ = runs
    out = tmp_path / "out"
    shutil.copytree(out_b, out)
    monkeypatch.setenv("KIT_OUTPUT", str(out))
    return data, out, out / "artifacts" / "demo"


# ----------------------------------------------------------------------------- (a) bit for bit
def test_same_seed_data_and_profile_give_the_same_submission_bit_for_bit(runs):
    data, out_a, out_b, sub_b = runs
    sub_a = out_a / "submissions" / "demo_smoke_ensemble.csv"
    assert sub_b == out_b / "submissions" / "demo_smoke_ensemble.csv"
    assert sub_a.read_bytes() == sub_b.read_bytes()
    fa, fb = files(out_a / "artifacts"), files(out_b / "artifacts")
    assert fa.keys() == fb.keys()
    for stage in STAGES:
        assert f"demo/{stage}/{'mae.pt' if stage == 'mae' else 'predictions.npz'}" in fa, stage
    assert len([k for k in fa if k.startswith("demo/experts/fold")]) == 14
    for name, path in fa.items():
        if name.endswith((".npz", "stage.json", ".csv")) or "/fold" in name:
            assert path.read_bytes() == fb[name].read_bytes(), name  # fold weights carry no timings
    ma = load_checkpoint(out_a / "artifacts/demo/mae/mae.pt")  # its history holds seconds: compare weights
    mb = load_checkpoint(out_b / "artifacts/demo/mae/mae.pt")
    assert ma["state_dict"].keys() == mb["state_dict"].keys()
    assert all(torch.equal(ma["state_dict"][k], mb["state_dict"][k]) for k in ma["state_dict"])


# ----------------------------------------------------------------------------- (b) skip and force
def test_rerun_skips_every_stage_and_force_reruns(copy_of_b, caplog):
    data, out, art = copy_of_b
    before = {k: os.stat(p) for k, p in files(art).items()}
    with caplog.at_level("INFO", logger="kit"):
        run_all(data, verbose=True)
    log = caplog.text
    for stage in BASELINES + ("mae", "experts", "fusion"):
        assert f"[{stage}] artifacts match config" in log and "skipped" in log, stage
    after = {k: os.stat(p) for k, p in files(art).items()}
    for name, st in before.items():
        if not name.startswith("ensemble/"):  # stage 05 is a cheap blend, always recomputed
            assert (after[name].st_ino, after[name].st_mtime_ns) == (st.st_ino, st.st_mtime_ns), name

    old = (art / "starter" / "predictions.npz").read_bytes()
    mae_old = load_checkpoint(art / "mae" / "mae.pt")["state_dict"]
    run = pipeline.Run(data, "smoke", verbose=False)
    pipeline.run_baseline_stage(run, "starter", force=True)
    pipeline.run_mae_stage(run, tiny("mae"), force=True)
    for name in ("starter/predictions.npz", "mae/mae.pt", "starter/stage.json", "mae/stage.json"):
        st = os.stat(art / name)  # rewritten (an unlinked stage.json's inode may be reused: compare both) ...
        assert (st.st_ino, st.st_mtime_ns) != (before[name].st_ino, before[name].st_mtime_ns), name
    assert (art / "starter" / "predictions.npz").read_bytes() == old  # ... to the same bytes
    mae_new = load_checkpoint(art / "mae" / "mae.pt")["state_dict"]
    assert all(torch.equal(mae_old[k], mae_new[k]) for k in mae_old)
    # forcing keeps the previous artifacts, moved aside under their hash, and retrains from scratch
    assert sorted(p.name.split("@")[0] for p in art.glob("*@*")) == ["mae", "starter"]


# ----------------------------------------------------------------------------- (c) config change
def test_config_change_moves_the_old_stage_aside_and_downstream_follows(copy_of_b, caplog):
    data, out, art = copy_of_b
    old_mae = {k: p.read_bytes() for k, p in files(art / "mae").items()}
    old_experts = {k: p.read_bytes() for k, p in files(art / "experts").items()}
    old_hash = pipeline.Run(data, "smoke").read_stamp("mae")["hash"]
    run = pipeline.Run(data, "smoke", verbose=True)
    with caplog.at_level("INFO", logger="kit"):
        pipeline.run_mae_stage(run, tiny("mae", seed=1))
    aside = art / f"mae@{old_hash}"
    assert f"[mae] config changed: previous artifacts moved to {aside}" in caplog.text
    assert {k: p.read_bytes() for k, p in files(aside).items()} == old_mae  # kept whole, not overwritten
    assert run.read_stamp("mae")["hash"] != old_hash
    assert load_mae(art / "mae" / "mae.pt")[1].seed == 1

    experts_hash = run.read_stamp("experts")["hash"]
    pipeline.run_experts_stage(run, tiny("experts"))  # same config, new upstream MAE: retrained
    assert {k: p.read_bytes() for k, p in files(art / f"experts@{experts_hash}").items()} == old_experts
    assert run.read_stamp("experts")["upstream"]["mae"] == run.read_stamp("mae")["hash"]
    assert len(list((art / "experts").glob("fold*_seed0.pt"))) == 14
    new = pipeline.load_components(run, ("experts",))["experts"]["oof"]
    assert new.shape == (len(run.train), 200) and np.isfinite(new).all()


# ----------------------------------------------------------------------------- (d) checkpoints
def test_checkpoints_load_weights_only_and_refuse_another_config_or_version(copy_of_b, tmp_path, monkeypatch):
    data, out, art = copy_of_b
    checkpoints = sorted(art.rglob("*.pt"))
    assert len(checkpoints) == 1 + (14 + 10) + 14  # MAE; experts: LOSO folds + cross-fit models; fusion: LOSO folds
    for path in checkpoints:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        assert payload["kit_version"] == artifacts.__version__ and payload["state_dict"]
    mae_pt, expert_pt = art / "mae" / "mae.pt", art / "experts" / "fold0_seed0.pt"

    with pytest.raises(CheckpointError, match=f"^{expert_pt}: config fields .* do not match MAEConfig"):
        load_mae(expert_pt)  # another stage's checkpoint
    with pytest.raises(CheckpointError, match=f"^{mae_pt}: config hash .* != expected"):
        load_checkpoint(mae_pt, expected_hash=config_hash(tiny("mae", seed=1)))
    monkeypatch.setattr(artifacts, "__version__", "9.9.9")
    with pytest.raises(CheckpointError, match=f"^{mae_pt}: written by kit {KIT_VERSION}, this is kit 9.9.9"):
        load_mae(mae_pt)
    monkeypatch.undo()

    unsafe = tmp_path / "unsafe.pt"
    torch.save({"state_dict": {}, "config": {}, "kit_version": artifacts.__version__, "x": Custom()}, unsafe)
    assert torch.load(unsafe, weights_only=False)["x"].__class__ is Custom  # a valid pickle, only unsafe
    with pytest.raises(CheckpointError, match=f"^{unsafe}: not a readable kit checkpoint"):
        load_checkpoint(unsafe)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(mae_pt.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=f"^{cut}: not a readable kit checkpoint"):
        load_checkpoint(cut)

    # a resume file of another config is refused, not silently continued
    stage = tmp_path / "mae"
    save_checkpoint(stage / "last.pt", {}, tiny("mae", seed=1), epoch=1)
    features = np.zeros((4, 16, 200, tiny("mae").n_features), np.float32)
    with pytest.raises(CheckpointError, match="last.pt: config hash"):
        pretrain_mae(features, tiny("mae"), stage, progress=False)


def test_interrupted_experts_leave_no_stamp_and_finished_checkpoints_are_reused(copy_of_b, monkeypatch):
    data, out, art = copy_of_b
    reference = (art / "experts" / "predictions.npz").read_bytes()
    kept = art / "experts_kept"
    shutil.copytree(art / "experts", kept)
    shutil.rmtree(art / "experts")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # the user stops the run (or the kernel dies) while the heads train

    monkeypatch.setattr(experts, "fit_heads", interrupted)
    run = pipeline.Run(data, "smoke", verbose=False)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_experts_stage(run, tiny("experts"))
    assert not (art / "experts" / "stage.json").exists() and not list((art / "experts").glob("*.pt"))
    # every checkpoint of this config and MAE present: nothing is refitted, the predictions are the same
    shutil.rmtree(art / "experts")
    shutil.copytree(kept, art / "experts")
    (art / "experts" / "stage.json").unlink()
    (art / "experts" / "predictions.npz").unlink()
    pipeline.run_experts_stage(run, tiny("experts"))
    assert (art / "experts" / "predictions.npz").read_bytes() == reference
    shutil.rmtree(kept)


# ----------------------------------------------------------------------------- (e) atomic writes
def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"good old content")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as fh:
            fh.write(b"half of the new")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"good old content" and sorted(tmp_path.iterdir()) == [path]

    sub = tmp_path / "submission.csv"
    subject, trial = np.array([1, 1, 7]), np.array([0, 1, 0])
    write_submission(sub, np.full((3, 200), 0.25), subject, trial)
    good = sub.read_bytes()
    bad = np.full((3, 200), 0.5)
    bad[1, 7] = np.nan
    with pytest.raises(SubmissionError, match=f"^{sub}: 1 predictions are NaN/inf; nothing written"):
        write_submission(sub, bad, subject, trial)
    monkeypatch.setattr(artifacts.os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        write_submission(sub, np.full((3, 200), 0.75), subject, trial)  # fails at the final rename
    assert sub.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == [sub.name, path.name]


def test_a_process_killed_mid_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "predictions.npz"
    path.write_bytes(b"the previous predictions")
    code = ("import os, signal, sys\nfrom kit.store.artifacts import atomic_write\n"
            "with atomic_write(sys.argv[1]) as fh:\n"
            "    fh.write(b'x' * 100000); fh.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    env = {**os.environ, "PYTHONPATH": str(project_root())}
    proc = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == b"the previous predictions"
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert len(leftovers) == 1 and leftovers[0].startswith(".predictions.npz.")  # hidden: readers skip it
