"""kit.app.runner: parameters are injected, notebooks run in the project root, failures name the notebook."""

import json

import jupytext
import nbformat
import pytest

from kit.app import notebook, prefetch, runner
from kit.core.errors import KitError
from kit.store.paths import project_root

NOTEBOOK = '''# %% [markdown]
# A throwaway notebook.

# %% tags=["parameters"]
DATA = None
PROFILE = "quick"

# %%
import json, os
import kit
print(json.dumps({"data": DATA, "profile": PROFILE, "cwd": os.getcwd(),
                  "kit_data": os.environ.get("KIT_DATA"), "kit_file": kit.__file__}))
'''

FAILING = '''# %% tags=["parameters"]
PROFILE = "quick"

# %%
ok = 1

# %%
x = 2
raise ValueError("boom at " + PROFILE)
'''


def _stdout(nb):
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout")


def test_inject_parameters_after_parameters_cell():
    nb = notebook.inject_parameters(jupytext.reads(NOTEBOOK, fmt="py:percent"), {"DATA": "/x y", "PROFILE": "full"})
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags[1] == ["parameters"] and tags[2] == ["injected-parameters"]
    values = {}
    exec(nb.cells[2].source, values)  # papermill writes Python literals
    assert {k: values[k] for k in ("DATA", "PROFILE")} == {"DATA": "/x y", "PROFILE": "full"}
    nb = notebook.inject_parameters(nb, {"PROFILE": "quick"})  # a second injection replaces the first
    assert sum("injected-parameters" in t for t in (c.metadata.get("tags", []) for c in nb.cells)) == 1
    plain = notebook.inject_parameters(jupytext.reads("# %%\nx = 1\n", fmt="py:percent"), {"A": 1})
    assert "injected-parameters" in plain.cells[0].metadata["tags"] and "A = 1" in plain.cells[0].source


def test_run_injects_and_uses_project_root(tmp_path, capsys):
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    (nbdir / "t_params.py").write_text(NOTEBOOK)
    data = tmp_path / "data"
    data.mkdir()
    runs = runner.run_notebooks(["t_params"], data=data, profile="full", notebooks=nbdir, out_dir=tmp_path / "runs")
    assert [r.name for r in runs] == ["t_params"] and runs[0].seconds > 0
    out = tmp_path / "runs" / "t_params.ipynb"
    assert runs[0].output == out
    seen = json.loads(_stdout(nbformat.read(out, as_version=4)).strip())
    assert seen["data"] == str(data.resolve()) and seen["profile"] == "full"
    assert seen["kit_data"] == str(data.resolve())
    assert seen["cwd"] == str(project_root())
    assert seen["kit_file"].startswith(str(project_root()))
    log = capsys.readouterr().out
    assert "[1/1] t_params" in log and "done in" in log


def test_failing_cell_raises_one_line_kiterror(tmp_path):
    (tmp_path / "t_fail.py").write_text(FAILING)
    with pytest.raises(KitError) as err:
        runner.run_notebooks(["t_fail"], notebooks=tmp_path, out_dir=tmp_path / "runs")
    msg = str(err.value)
    assert "\n" not in msg
    assert "t_fail.py" in msg
    assert 'raise ValueError("boom at " + PROFILE)' in msg and "line 2" in msg
    assert "ValueError: boom at quick" in msg
    executed = nbformat.read(tmp_path / "runs" / "t_fail.ipynb", as_version=4)  # kept for debugging
    assert any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))


def test_dead_kernel_is_a_kiterror(tmp_path):
    (tmp_path / "t_dead.py").write_text("# %%\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    with pytest.raises(KitError, match="t_dead.py: the kernel died"):
        runner.run_notebooks(["t_dead"], notebooks=tmp_path, out_dir=tmp_path / "runs", log=None)


def test_a_failing_notebook_ends_the_background_anchors(tmp_path, monkeypatch):
    """The series fails in notebook 04 while the anchors of 05 train in a second process: that process is ended
    and its log closed (nothing is left running), and the error is the notebook's."""
    import subprocess
    import sys

    from kit.data.demo import write_demo_dataset

    started = []

    def fake_prefetch(anchors, data, profile, log_path, *, cwd=None, log=print, **kw):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log_path, "w")  # noqa: SIM115 - closed by the runner
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], stdout=fh)
        started.append((proc, fh))
        return proc, fh, log_path

    monkeypatch.setattr(prefetch, "start_prefetch", fake_prefetch)
    (tmp_path / "04_fusion.py").write_text(FAILING)
    (tmp_path / "05_ensembling.py").write_text("# %%\nx = 1\n")
    data = write_demo_dataset(tmp_path / "demo", scale=0.02, seed=1)
    with pytest.raises(KitError, match="04_fusion.py"):
        runner.run_notebooks(["04_fusion", "05_ensembling"], data=data, notebooks=tmp_path,
                             out_dir=tmp_path / "runs", log=None)
    (proc, fh), = started
    assert proc.poll() is not None and fh.closed


def test_a_helper_takes_the_anchors_from_the_other_end_when_the_notebooks_are_done_first(tmp_path, monkeypatch):
    """Notebook 05's anchors are still training when 04 ends: a second process gets the same list reversed and
    the same claims folder; the runner waits for both; each anchor is claimed once."""
    import subprocess
    import sys

    from kit.data.demo import write_demo_dataset

    calls = []

    def fake_prefetch(anchors, data, profile, log_path, *, claims=None, cwd=None, log=print, role="", job=None):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log_path, "w")  # noqa: SIM115 - closed by the runner
        code = ("import sys, time\nfrom kit.app.prefetch import claim\n"
                "for a in sys.argv[3:]:\n    if claim(sys.argv[1], a):\n        print(a, flush=True)\n"
                "        time.sleep(float(sys.argv[2]))\nprint('anchors wall time: 1.0 s')")
        seconds = "10" if not calls else "0"  # the background process is slow, the helper quick
        proc = subprocess.Popen([sys.executable, "-c", code, str(claims), seconds, *anchors], stdout=fh)
        calls.append((tuple(anchors), claims, log_path))
        return proc, fh, log_path

    monkeypatch.setattr(prefetch, "start_prefetch", fake_prefetch)
    for name in ("04_fusion", "05_ensembling"):
        (tmp_path / f"{name}.py").write_text("# %%\nx = 1\n")
    monkeypatch.setattr(runner, "finish_run", lambda *a, **k: None)
    data = write_demo_dataset(tmp_path / "demo", scale=0.02, seed=1)
    runner.run_notebooks(["04_fusion", "05_ensembling"], data=data, notebooks=tmp_path, out_dir=tmp_path / "runs",
                         log=None)
    (first, claims, log1), (second, claims2, log2) = calls
    assert first == prefetch.PREFETCH["05_ensembling"] and second == first[::-1] and claims == claims2
    trained = [w for log in (log1, log2) for w in log.read_text().splitlines() if not w.startswith("anchors")]
    assert sorted(trained) == sorted(first)  # each anchor by one process only
    assert sorted(p.name for p in claims.iterdir()) == sorted(first)


def _deferred_series(tmp_path, monkeypatch, first: str):
    """The five notebooks (``first`` as notebook 01, the others one line), no anchors, notebook 01 deferred."""
    import kit.pipeline.estimate as estimate
    from kit.data.demo import write_demo_dataset

    for name in runner.NOTEBOOKS:
        (tmp_path / f"{name}.py").write_text(first if name == runner.NOTEBOOKS[0] else "# %%\nx = 1\n")
    monkeypatch.setitem(prefetch.PREFETCH, "05_ensembling", ())  # nothing to train: the process only has 01
    monkeypatch.setattr(estimate, "plan_line", lambda *a, **k: ("expected: 01 with the anchors", (runner.NOTEBOOKS[0],)))
    finished = {}
    monkeypatch.setattr(runner, "finish_run", lambda *a, **k: finished.update(k, timings=a[2]))
    return write_demo_dataset(tmp_path / "demo", scale=0.02, seed=1), finished


def test_notebook_01_runs_in_the_anchors_process_when_the_plan_says_so(tmp_path, monkeypatch):
    """The plan defers notebook 01: the foreground runs 02-05, the anchors' process executes 01 (its executed copy
    where the others are, injected with the same parameters), and the run reports it in the series' order."""
    lines = []
    data, finished = _deferred_series(tmp_path, monkeypatch, NOTEBOOK)
    out = tmp_path / "runs"
    runs = runner.run_notebooks(list(runner.NOTEBOOKS), data=data, notebooks=tmp_path, out_dir=out, log=lines.append)
    assert [r.name for r in runs] == list(runner.NOTEBOOKS)
    assert any("01_eda_theta_power" in w and "anchors' processes" in w for w in lines)
    assert not any(w.startswith("[1/5] 01_eda_theta_power (profile=quick) ...") for w in lines)
    logs = (out / "05_ensembling.anchors.log").read_text() + (out / "05_ensembling.anchors-helper.log").read_text() \
        if (out / "05_ensembling.anchors-helper.log").is_file() else (out / "05_ensembling.anchors.log").read_text()
    assert "notebook 01_eda_theta_power done in" in logs
    printed = json.loads(_stdout(nbformat.read(out / "01_eda_theta_power.ipynb", as_version=4)).strip().splitlines()[-1])
    assert printed["data"] == str(data.resolve()) and printed["profile"] == "quick"
    assert runs[0].output == out / "01_eda_theta_power.ipynb" and runs[0].seconds > 0
    assert finished["timings"]["01_eda_theta_power"] == pytest.approx(runs[0].seconds, abs=0.06)
    assert 0 < finished["total_s"] < sum(r.seconds for r in runs) + 60


def test_a_deferred_notebook_that_fails_fails_the_run_with_its_error(tmp_path, monkeypatch):
    data, _ = _deferred_series(tmp_path, monkeypatch, FAILING)
    with pytest.raises(KitError, match=r"01_eda_theta_power.py: cell \d+, line 2: `raise ValueError.*boom at quick"):
        runner.run_notebooks(list(runner.NOTEBOOKS), data=data, notebooks=tmp_path, out_dir=tmp_path / "runs",
                             log=None)
    for path in (tmp_path / "runs").glob("*.anchors*.log"):
        assert "notebook 01_eda_theta_power failed" in path.read_text() or "failed" not in path.read_text()


def test_claims_let_one_process_train_an_anchor(tmp_path):
    assert prefetch.claim(tmp_path, "eegnet") and not prefetch.claim(tmp_path, "eegnet")
    assert prefetch.claim(tmp_path, "riemann") and prefetch.claim("", "eegnet")  # no folder: a process alone


def test_a_bad_data_folder_fails_before_any_process_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(prefetch, "start_prefetch", lambda *a, **k: pytest.fail("a process was started"))
    (tmp_path / "data" / "training").mkdir(parents=True)
    (tmp_path / "data" / "training" / "stray.mat").write_bytes(b"not a mat")
    for name in ("04_fusion", "05_ensembling"):
        (tmp_path / f"{name}.py").write_text("# %%\nx = 1\n")
    with pytest.raises(KitError, match="stray.mat"):
        runner.run_notebooks(["04_fusion", "05_ensembling"], data=tmp_path / "data", notebooks=tmp_path, log=None)


def test_bad_arguments(tmp_path):
    with pytest.raises(KitError, match="profile"):
        runner.run_notebooks(["x"], profile="huge", notebooks=tmp_path)
    with pytest.raises(KitError, match="does not exist"):
        runner.run_notebooks(["x"], data=tmp_path / "nope", notebooks=tmp_path)
    with pytest.raises(KitError, match="notebook not found"):
        runner.run_notebooks(["missing"], notebooks=tmp_path, log=None)


def test_notebook_pairs_in_sync():
    """Every notebooks/*.py has its paired .ipynb with the same cells (run `jupytext --sync notebooks/*.py`)."""
    pys = sorted((project_root() / "notebooks").glob("*.py"))
    if not pys:
        pytest.skip("no notebooks yet")
    for py in pys:
        ipynb = py.with_suffix(".ipynb")
        assert ipynb.is_file(), f"{ipynb} missing: run jupytext --sync {py}"
        text_cells = [(c.cell_type, c.source) for c in jupytext.read(py).cells]
        nb_cells = [(c.cell_type, c.source) for c in nbformat.read(ipynb, as_version=4).cells]
        assert nb_cells == text_cells, f"{ipynb} out of sync with {py}: run jupytext --sync {py}"


def test_series_names_match_notebooks_folder():
    assert runner.NOTEBOOKS[0] == "01_eda_theta_power" and len(runner.NOTEBOOKS) == 5
    present = {p.stem for p in (project_root() / "notebooks").glob("*.py")}
    assert present <= set(runner.NOTEBOOKS), f"notebooks not in the series: {present - set(runner.NOTEBOOKS)}"


def test_notebook_01_runs_on_a_tiny_demo(tmp_path, monkeypatch):
    """The EDA notebook end to end: figures, the starter's predictions for 05, an executed copy."""
    import numpy as np

    from kit.data.demo import write_demo_dataset
    from kit.store.artifacts import load_npz

    if not (project_root() / "notebooks" / "01_eda_theta_power.py").is_file():
        pytest.skip("notebook 01 not present")
    data = write_demo_dataset(tmp_path / "demo", scale=0.03, seed=1)
    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path / "out"))
    (run,) = runner.run_notebooks(["01_eda_theta_power"], data=data, log=None)
    figures = sorted(p.name for p in (tmp_path / "out" / "reports" / "figures").glob("*.png"))
    assert set(figures) >= {"01_edge_effect.png", "01_evoked_by_class.png", "01_psd_by_class.png",
                            "01_starter_auc_timecourse.png", "01_tfr_difference.png", "01_theta_by_class.png",
                            "01_theta_cluster_test.png", "01_theta_cluster_test_channels.png",
                            "01_theta_difference_by_subject.png", "01_theta_topomap_0.4-0.6s.png", "01_montage.png",
                            "01_mne_compare_evokeds.png", "01_starter_permutation_test.png",
                            "01_starter_subject_auc.png"}
    pdfs = sorted(p.name for p in (tmp_path / "out" / "reports" / "figures").glob("*.pdf"))
    assert pdfs == [f.replace(".png", ".pdf") for f in figures]  # every figure also as vector PDF
    pred = load_npz(tmp_path / "out" / "artifacts" / "demo" / "starter" / "predictions.npz")
    n_train = sum(a + b for a, b in json.loads((data / "demo.json").read_text())["train_counts"].values())
    assert pred["oof"].shape == (n_train, 200) and pred["test"].shape == (len(pred["test_trial"]), 200)
    assert np.all((pred["oof"] >= 0) & (pred["oof"] <= 1))
    assert run.output == tmp_path / "out" / "reports" / "runs" / "01_eda_theta_power.ipynb"
    assert "starter LOSO score" in _stdout(nbformat.read(run.output, as_version=4))
