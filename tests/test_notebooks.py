"""The executed notebooks read as a person reads them: no traceback, no TqdmWarning, no cell that prints a wall,
no stray reprs, a computed "What this run found" at the end of each, and a run summary (text and JSON).

The session's `python -m kit run --profile smoke` on a tiny simulated folder (tests/conftest.py) serves every check.
"""

import json
import re

import nbformat
import numpy as np
import pytest

from kit.app.runner import NOTEBOOKS
from kit.eval.cv import loso_score

MAX_LINES = 60
STRAY = ("PosixPath(", "np.float32(", "np.float64(", "np.int64(", "TqdmWarning", "IProgress not found")


@pytest.fixture(scope="module")
def executed(smoke_run):
    """The session's smoke run (tests/conftest.py) and its executed notebooks."""
    data, out, stdout = smoke_run
    books = {name: nbformat.read(out / "reports" / "runs" / f"{name}.ipynb", as_version=4) for name in NOTEBOOKS}
    return data, out, stdout, books


def _texts(output) -> list[str]:
    """Every text an output shows: a stream's text, an error's traceback, the plain/markdown of a result."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return ["\n".join(output.traceback)]
    data = output.get("data", {})
    return [str(data[k]) for k in ("text/plain", "text/markdown") if k in data]


def _lines(text: str) -> int:
    """Lines a saved output shows, every carriage-return redraw of a progress bar counted as a line."""
    return len([piece for piece in re.split(r"\r\n|\r|\n", text.rstrip("\n"))])


def test_no_traceback_no_warning_no_wall_no_stray_repr(executed):
    _, _, _, books = executed
    for name, nb in books.items():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            lines = 0
            for output in cell.get("outputs", []):
                assert output.output_type != "error", f"{name} cell {index}: {output.get('ename')}"
                for text in _texts(output):
                    assert "Traceback" not in text, f"{name} cell {index}"
                    for stray in STRAY:
                        assert stray not in text, f"{name} cell {index} shows {stray!r}: {text[:300]}"
                    if output.output_type == "stream" or "text/markdown" not in output.get("data", {}):
                        lines += _lines(text)
            assert lines <= MAX_LINES, f"{name} cell {index} prints {lines} lines"


def test_progress_bars_are_one_line_each_in_their_final_state(executed):
    _, _, _, books = executed
    bars = [o for nb in books.values() for c in nb.cells for o in c.get("outputs", [])
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert bars, "the deep stages show tqdm bars"
    for o in bars:
        text = o["data"]["text/plain"]
        assert "\n" not in text and "\r" not in text
        assert not re.search(r"\b0%\|", text), text  # the final state, not the one the bar started with


def test_each_notebook_states_its_data_and_ends_with_computed_findings(executed):
    data, _, _, books = executed
    for name, nb in books.items():
        shown = [t for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) for t in _texts(o)]
        assert any("This run's data" in t and "simulated" in t for t in shown), name
        last = [c for c in nb.cells if c.cell_type == "code"][-1]
        md = [o["data"]["text/markdown"] for o in last.outputs if "text/markdown" in o.get("data", {})]
        assert md and md[-1].startswith("### What this run found"), name


def test_eda_findings_quote_the_starter_and_the_cluster_tests(executed):
    data, out, _, books = executed
    cells = [c for c in books["01_eda_theta_power"].cells if c.cell_type == "code"]
    text = [o["data"]["text/markdown"] for o in cells[-1].outputs if "text/markdown" in o.get("data", {})][-1]
    pred = np.load(out / "artifacts" / "demo" / "starter" / "predictions.npz")
    score = loso_score(pred["oof"], pred["y"], pred["subject"])
    assert f"starter scores {score['loso_score']:.4f}" in text
    assert "label permutations" in text and "cluster tests were run here" in text
    assert "Theta power over time (channel mean): " in text
    assert ("no cluster at p < 0.05" in text) or ("sum of t = " in text and "dz = " in text)


def test_run_summary_in_stdout_json_and_notebook_05(executed):
    data, out, stdout, books = executed
    summary = json.loads((out / "reports" / "runs" / "summary.json").read_text())
    assert summary["submission"] == str(out / "submissions" / "demo_smoke_ensemble.csv")
    e = summary["ensemble"]
    assert e["ci"][0] <= e["loso_score"] <= e["ci"][1] and e["lb_p5"] <= e["lb_p95"]
    weights = [c["weight"] for c in summary["components"]]
    assert sum(weights) == pytest.approx(1.0, abs=1e-3) and min(weights) >= 0
    assert set(summary["timings"]) >= set(NOTEBOOKS) and any("background" in k for k in summary["timings"])
    assert summary["device"] and summary["torch_threads"] >= 1
    # each stage's compute time (the anchors in the background process, meanwhile); the text in the order they ran
    stage_s = summary["stage_seconds"]
    assert {"starter", "mae", "experts", "fusion", "fusion_lda", "eegnet", "riemann", "ensemble"} <= set(stage_s)
    assert all(v >= 0 for v in stage_s.values())
    line = next(s for s in stdout.splitlines() if s.startswith("stage time:      "))
    assert line.index(" mae ") < line.index(" experts ") < line.index(" fusion ") < line.index(" ensemble ")
    assert [r["subject"] for r in summary["test_subjects"]] == sorted(r["subject"] for r in summary["test_subjects"])
    assert sum(r["trials"] for r in summary["test_subjects"]) == len(np.load(
        out / "artifacts" / "demo" / "ensemble" / "predictions.npz")["test"])
    assert "RUN SUMMARY" in stdout and f"LOSO score:      {e['loso_score']:.4f}" in stdout
    # notebook 05 prints the one line: components with weights, LOSO [CI], difference to the best component
    shown = [o.text for c in books["05_ensembling"].cells if c.cell_type == "code" for o in c.get("outputs", [])
             if o.output_type == "stream"]
    line = [t for t in shown if t.startswith("ensemble (")]
    assert len(line) == 1 and len(line[0].strip().splitlines()) == 1
    assert f"LOSO {e['loso_score']:.4f} [95 % CI {e['ci'][0]:.4f}, {e['ci'][1]:.4f}]" in line[0]
    assert f"vs the best component {summary['best_component']['name']}" in line[0]


def test_figures_are_150_dpi_pngs_beside_pdfs(executed):
    from PIL import Image

    _, out, _, _ = executed
    figures = out / "reports" / "figures"
    for name in ("01_montage", "01_mne_compare_evokeds", "01_starter_subject_auc", "01_starter_permutation_test",
                 "03_expert_attention", "03_expert_auc_by_channel", "05_ensemble_auc_timecourse",
                 "05_thetacov_patterns"):
        assert (figures / f"{name}.pdf").is_file(), name
        assert Image.open(figures / f"{name}.png").info["dpi"][0] >= 149, name
