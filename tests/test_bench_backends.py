"""``kit bench`` through joblib's backends (kit.app.bench.parallel_backend / parallel_bench): the parts of a folder,
the same table on loky processes, on a local Dask cluster of 2 workers and in one process, and clear errors."""

import json

import numpy as np
import pytest

from kit.app.bench import parallel_backend
from kit.app.cli import main
from kit.core.errors import KitError
from kit.data.demo import write_demo_dataset
from kit.methods.registry import ANCHOR_LEVERS, ANCHORS, ENSEMBLE_COMPONENTS
from kit.pipeline.benchmark import bench_parts

CHEAP = ["starter", "thetacov", "bandpower"]


def test_parts_keep_the_deep_chain_together_and_each_anchor_alone():
    parts = bench_parts(("eegnet", "riemann_flat", "fusion", "experts_mldg", "starter"))
    assert parts == [("starter",), ("eegnet",), ("riemann_flat",), ("experts_mldg", "fusion")]
    parts = bench_parts(("ensemble",))  # its components, the ensemble itself left to the folder's last task
    flat = [m for p in parts for m in p]
    assert sorted(flat) == sorted(ENSEMBLE_COMPONENTS) and "ensemble" not in flat
    assert all(len(p) == 1 for p in parts if p[0] in ANCHORS or p[0] in ANCHOR_LEVERS)
    with pytest.raises(KitError, match="unknown methods"):
        bench_parts(("starter", "csp"))


def _bench(tmp_path, monkeypatch, capsys, data, name, *extra):
    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path / name))
    argv = ["bench", "--data", str(data), "--profile", "smoke", "--methods", *CHEAP, "--no-null", "--n-boot", "50",
            "--out", str(tmp_path / name / "bench.md"), *extra]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = summary["folders"]["demo"]["methods"]
    times = json.loads((tmp_path / name / "artifacts" / "demo" / "bench_times.json").read_text())
    return {k: {f: v for f, v in r.items() if f != "seconds"} for k, r in rows.items()}, rows, times


def test_dask_local_cluster_gives_the_loky_and_the_one_process_table(tmp_path, monkeypatch, capsys):
    """The CI check of ``kit bench --backend dask``: a LocalCluster of 2 single-threaded worker processes."""
    pytest.importorskip("distributed")
    data = write_demo_dataset(tmp_path / "demo", scale=0.03, seed=3)
    one, _, _ = _bench(tmp_path, monkeypatch, capsys, data, "one")
    loky, _, _ = _bench(tmp_path, monkeypatch, capsys, data, "loky", "--jobs", "2")
    dask, rows, times = _bench(tmp_path, monkeypatch, capsys, data, "dask", "--jobs", "2", "--backend", "dask")
    assert set(dask) == set(CHEAP)
    assert dask == loky == one  # every score, window, interval and leaderboard spread
    # each part's compute time reached the folder's bench_times.json (merged by the client), and the table
    for name in CHEAP:
        key = [k for k in times if k.startswith(f"{name}@")]
        assert len(key) == 1 and times[key[0]] > 0 and rows[name]["seconds"] == pytest.approx(times[key[0]], abs=0.051)
    preds = [np.load(tmp_path / n / "artifacts" / "demo" / "thetacov" / "predictions.npz")["oof"]
             for n in ("one", "dask")]
    np.testing.assert_array_equal(preds[0], preds[1])


def test_backend_errors_are_one_line(tmp_path):
    with pytest.raises(KitError, match="unknown"):
        with parallel_backend("spark"):
            pass
    pytest.importorskip("distributed")
    with pytest.raises(KitError, match="no Dask scheduler at tcp://127.0.0.1:1"):
        with parallel_backend("dask", scheduler="tcp://127.0.0.1:1"):
            pass
