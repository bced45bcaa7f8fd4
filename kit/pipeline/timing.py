"""Each stage's wall time and peak memory on one data folder, and the critical path of ``kit run``.

:func:`profile_stages` runs every stage of :data:`STAGES` in order, each in a fresh child Python process
(one thread per numeric library, as ``kit run``'s background process), on its own output root
(``{output_root}/profile-stages/{data tag}``: the user's artifacts are never touched), from empty artifacts.
A child loads what its stage needs first (the data; the deep features for the deep stages), then measures
the stage alone:

- wall time, s (``time.perf_counter``);  ``features`` computes the deep features (and writes their cache,
  :attr:`kit.pipeline.run.Run.features`), ``features_cached`` reads them back as notebooks 03 and 04 do;
- peak resident memory of the process during the stage, MiB (Linux ``VmHWM``, reset before the stage by
  writing ``5`` to ``/proc/self/clear_refs``; elsewhere ``ru_maxrss`` since the start of the child), and the
  resident memory before it (the data it holds).

The notebook stages ``nb01`` ... ``nb05`` execute the code cells of the notebook (its jupytext ``.py``,
parameters injected) after every model stage is done, so their model stages are read from the artifacts:
what is left is the notebook's own work (loading, figures, statistics), with the slowest cells named.

:func:`kit.pipeline.critical.critical_path` puts the measured stages on ``kit run``'s two processes
(:mod:`kit.app.runner`): notebooks 01-04 and their stages in one, the anchors of
:data:`kit.app.prefetch.PREFETCH` in the other, then notebook 05; :func:`format_profile` prints both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kit.core.errors import KitError
from kit.pipeline.critical import ANCHOR_ORDER, quicker_layout
from kit.store.paths import output_root, project_root

ANCHOR_STAGES = ("starter", "thetacov", "bandpower", "riemann", "eegnet")
"""The anchors (:func:`kit.pipeline.stages.run_baseline_stage`)."""

MODEL_STAGES = ("mae", "experts", "fusion", "fusion_lda", "ensemble")
"""The deep stages and the ensemble, in pipeline order."""

NOTEBOOK_STAGES = ("nb01", "nb02", "nb03", "nb04", "nb05")
"""The notebooks' own work (their model stages read from the artifacts)."""

STAGES = ("load", "features", "features_cached") + ANCHOR_STAGES + MODEL_STAGES + NOTEBOOK_STAGES
"""Every stage :func:`profile_stages` measures, in the order it runs them (each needs the ones before it)."""

NEEDS_FEATURES = ("features", "mae", "experts", "fusion")
"""Stages whose child computes (or reads) the deep features before the stage is timed."""

NOTEBOOK_FILES = {"nb01": "01_eda_theta_power", "nb02": "02_mae_pretraining", "nb03": "03_fomaml_experts",
                  "nb04": "04_fusion", "nb05": "05_ensembling"}
"""Notebook stage -> notebook stem (``notebooks/{stem}.py``)."""

_CHILD = r"""
import json, os, resource, sys, time
t_start = time.perf_counter()
from pathlib import Path

def _status(key):
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None

def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False

stage, data, profile = sys.argv[1:4]
from kit.pipeline import stages
from kit.pipeline.run import Run
run = Run(Path(data), profile, verbose=False)
if stage != "load" and not stage.startswith("nb"):
    run.dataset
    if stage in ("mae", "experts", "fusion"):
        run.features
extra = {}
if stage == "features" and getattr(run, "feature_cache", None) is not None:
    run.feature_cache.unlink(missing_ok=True)  # computed, not read back
base = _status("VmRSS")
reset = _reset_peak()
c0 = os.times()
t0 = time.perf_counter()
if stage == "load":
    run.dataset
elif stage in ("features", "features_cached"):
    run.features
elif stage in ("starter", "thetacov", "bandpower", "riemann", "eegnet"):
    stages.run_baseline_stage(run, stage, force=True)
elif stage == "mae":
    stages.run_mae_stage(run, force=True)
elif stage == "experts":
    stages.run_experts_stage(run, force=True)
elif stage == "fusion":
    stages.run_fusion_stage(run, force=True)
elif stage == "fusion_lda":
    stages.run_fusion_lda_stage(run, force=True)
elif stage == "ensemble":
    stages.run_ensemble_stage(run)
else:
    import jupytext
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    nb = jupytext.read(sys.argv[4])
    ns = {"__name__": "__main__"}
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = "\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith(("%", "!")))
        t1 = time.perf_counter()
        exec(compile(src, f"<{stage} cell {len(cells)}>", "exec"), ns)
        if "parameters" in cell.metadata.get("tags", []):
            ns.update(DATA=data, PROFILE=profile)
        plt.close("all")
        cells.append((len(cells), round(time.perf_counter() - t1, 2), src.strip().splitlines()[0][:60] if src.strip() else ""))
    nrun = ns.get("run")
    extra = {"cells": sorted(cells, key=lambda c: -c[1])[:4],
             "computed_features": bool(nrun is not None and "features" in vars(nrun))}
seconds = time.perf_counter() - t0
c1 = os.times()
cpu = (c1.user - c0.user) + (c1.system - c0.system)
peak = _status("VmHWM") if reset else None
if peak is None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
ds = run.__dict__.get("dataset")
print(json.dumps({"stage": stage, "seconds": seconds, "cpu_seconds": cpu, "peak_mib": peak, "base_mib": base, "peak_reset": reset,
                  "child_seconds": time.perf_counter() - t_start,
                  "n_trials": None if ds is None else len(ds), **extra}))
"""


@dataclass
class StageTime:
    """One stage measured by :func:`profile_stages`.

    Attributes
    ----------
    stage : str
        A name of :data:`STAGES`.
    seconds : float
        Wall time of the stage alone, s.
    cpu_seconds : float
        CPU time of the child during the stage (user + system), s: the stages are single-threaded, so on
        a busy machine this is the steadier measure (on an idle one it is about the wall time).
    peak_mib : float
        Peak resident memory of the child process during the stage, MiB.
    base_mib : float or None
        Resident memory before the stage (imports, data, features), MiB.
    child_seconds : float
        Wall time of the whole child (imports and what the stage needs loaded first), s.
    cells : list
        Notebook stages: the slowest cells, ``(index, seconds, first line)``.
    computed_features : bool
        Notebook stages: the notebook computed the deep features itself.
    """

    stage: str
    seconds: float
    peak_mib: float
    cpu_seconds: float = 0.0
    base_mib: float | None = None
    child_seconds: float = 0.0
    cells: list = field(default_factory=list)
    computed_features: bool = False


@dataclass
class StageProfile:
    """The result of :func:`profile_stages`.

    Attributes
    ----------
    data : str
        The data folder.
    n_trials, n_train : int
        Trials in all and training trials.
    profile : str
    times : dict of str -> StageTime
        In :data:`STAGES` order.
    machine : str
        :func:`machine_description` of the machine it ran on.
    load : list of float
        1-, 5- and 15-minute load averages at the start and at the end (``os.getloadavg``).
    """

    data: str
    n_trials: int
    n_train: int
    profile: str
    times: dict = field(default_factory=dict)
    machine: str = ""
    load: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {**asdict(self), "times": {k: asdict(v) for k, v in self.times.items()}}

    @classmethod
    def from_json(cls, d: dict) -> "StageProfile":
        return cls(**{**d, "times": {k: StageTime(**v) for k, v in d["times"].items()}})


def machine_description() -> str:
    """``"{n} cores, {cpu model}, {memory} GiB"`` of this machine (Linux ``/proc``; less elsewhere)."""
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) / 2**20:.0f} GiB"
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores" + (f", {model}" if model else "") + mem


def _child_env(out_root: Path) -> dict:
    path = os.pathsep.join(filter(None, [str(project_root()), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "KIT_OUTPUT": str(out_root), "PYTHONPATH": path, "MPLBACKEND": "Agg",
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "KIT_THREADS": "1"}


def profile_stages(data, *, profile: str = "quick", stages=STAGES, out_root: str | os.PathLike | None = None,
                   keep: bool = False, log=print) -> StageProfile:
    """Wall time and peak memory of each stage on ``data``, each stage in a fresh child process.

    Parameters
    ----------
    data : path
        A competition-layout data folder.
    profile : str
        ``quick``, ``full`` or ``smoke`` (:data:`kit.pipeline.profiles.PROFILES`).
    stages : sequence of str
        A subset of :data:`STAGES` (run in :data:`STAGES` order).  A stage reads what the stages
        before it wrote, so a subset runs on the artifacts a previous call left with ``keep=True``.
    out_root : path, optional
        Output root of the children (artifacts, figures); default ``{output_root}/profile-stages/{tag}``.
        Emptied first unless ``keep``.
    keep : bool
        Keep the artifacts already in ``out_root`` (to time some stages again).
    log : callable or None
        Receives one line per finished stage.

    Returns
    -------
    StageProfile

    Raises
    ------
    KitError
        Unknown stage or profile, a missing data folder, a child that failed (its last line of stderr).
    """
    from kit.data.dataset import load_dataset
    from kit.pipeline.profiles import check_profile
    from kit.pipeline.run import data_tag

    check_profile(profile)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise KitError(f"profile-stages: unknown stages {unknown}; choose from {', '.join(STAGES)}")
    data = Path(data).expanduser().resolve()
    if not data.is_dir():
        raise KitError(f"{data}: data folder does not exist")
    ds = load_dataset(data)
    out_root = Path(out_root) if out_root else output_root() / "profile-stages" / data_tag(data)
    if out_root.exists() and not keep:
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    result = StageProfile(str(data), len(ds), int((~ds.is_test).sum()), profile, machine=machine_description(),
                          load=[round(v, 2) for v in os.getloadavg()])
    del ds
    log = log or (lambda _msg: None)
    env = _child_env(out_root)
    for stage in (s for s in STAGES if s in stages):
        argv = [sys.executable, "-c", _CHILD, stage, str(data), profile]
        if stage in NOTEBOOK_FILES:
            argv.append(str(project_root() / "notebooks" / f"{NOTEBOOK_FILES[stage]}.py"))
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=out_root)
        if proc.returncode != 0:
            tail = " ".join(proc.stderr.strip().splitlines()[-1:])
            raise KitError(f"profile-stages: stage {stage} failed ({proc.returncode}): {tail}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        t = StageTime(stage, out["seconds"], out["peak_mib"], out["cpu_seconds"], out["base_mib"],
                      out["child_seconds"], out.get("cells", []), out.get("computed_features", False))
        result.times[stage] = t
        log(f"[profile] {stage:15s} {t.seconds:8.1f} s wall {t.cpu_seconds:8.1f} s CPU  peak {t.peak_mib:7.0f} MiB"
            f"  (load {os.getloadavg()[0]:.1f})")
    result.load += [round(v, 2) for v in os.getloadavg()]
    return result


def format_profile(result: StageProfile, background=ANCHOR_ORDER) -> str:
    """The stage table (markdown) and :func:`critical_path` (on CPU and on wall seconds), as the command prints them."""
    lines = [f"{result.data}: {result.n_trials} trials ({result.n_train} training), profile {result.profile}; "
             f"{result.machine}; load average {result.load}",
             "", "| stage | wall (s) | CPU (s) | peak memory (MiB) | held before (MiB) | slowest cells (wall) |",
             "|---|---:|---:|---:|---:|---|"]
    for t in result.times.values():
        cells = "; ".join(f"{s:.0f} s `{src}`" for _, s, src in t.cells[:2])
        base = "" if t.base_mib is None else f"{t.base_mib:.0f}"
        lines.append(f"| {t.stage} | {t.seconds:.1f} | {t.cpu_seconds:.1f} | {t.peak_mib:.0f} | {base} | {cells} |")
    lines.append("")
    for label, key in (("CPU", "cpu_seconds"), ("wall", "seconds")):
        times = {k: getattr(v, key) for k, v in result.times.items()}
        path, _ = quicker_layout(times, background)  # the runner's layout (estimate.plan_run)
        fg, bg = sum(path.foreground.values()), sum(path.background.values())
        first = "notebooks 01-04" if "nb01" in path.foreground else "notebooks 02-04"
        helper = (f", the helper {', '.join(path.helper)} {sum(path.helper.values()):.0f} s after {first}"
                  if path.helper else "")
        lines.append(f"kit run from the {label} times: {first} with their stages {fg:.0f} s | background "
                     f"({', '.join(k for k in path.background if k != 'load')}) {bg:.0f} s{helper}, all done "
                     f"at {path.anchors_done:.0f} s | then notebook 05 "
                     f"{sum(path.final.values()):.0f} s -> critical path: the {path.critical} "
                     f"({first if path.critical == 'foreground' else 'anchors'}), longest stage on it "
                     f"{path.slowest}; expected total {path.total:.0f} s ({path.total / 60:.1f} min)")
    return "\n".join(lines)
