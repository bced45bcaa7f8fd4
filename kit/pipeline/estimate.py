"""How long ``kit run`` will take on this machine: each stage's measured cost per trial, the folder's trial count.

Every stage's time is modelled as ``fixed + per_1000 * (n / 1000) ** power`` seconds, ``n`` its folder's training
trials or all trials (:data:`COUNTS`), the two constants fitted (:func:`fit_costs`) through two
measurements (:data:`MEASURED`) of :func:`kit.pipeline.timing.profile_stages` (``python -m kit profile-stages``): the demo size
(scale 0.2: 2,389 trials, 2,042 training) and the competition's size (scale 1: 11,943 trials, 10,209
training), on :data:`MEASURED_ON`.  The stages are then put on ``kit run``'s two processes
(:func:`kit.pipeline.critical.critical_path`: notebooks 01-04 beside the background anchors, then notebook 05).

The constants are CPU seconds of single-threaded stages: about the wall time on a machine whose cores are
free, which is what a user who starts ``kit run`` has (two stages at once need two cores; on one core the
two processes share it and the run takes about their sum).  ``speed`` scales them for another machine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from kit.core.errors import KitError
from kit.pipeline.critical import ANCHOR_ORDER, quicker_layout

MEASURED_ON = "2 cores, AMD EPYC (KVM), 23 GiB, torch 2.13 CPU; kit 0.3 (issue 25, third and fourth rounds), load average 1-3"
"""The machine (and code) :data:`MEASURED` was measured on."""

COUNTS = {"load": "all", "features": "all", "features_cached": "all", "starter": "train", "thetacov": "train",
          "bandpower": "train", "riemann": "train", "eegnet": "train", "mae": "all", "experts": "train",
          "fusion": "all", "fusion_lda": "train", "nb01": "train", "nb02": "all", "nb03": "train", "nb04": "all",
          "nb05": "train"}
"""Stage -> the trials its cost grows with: ``"all"`` (training and test: loading, features, the MAE, the
fusion's inputs) or ``"train"`` (models fitted and statistics computed on the labelled trials)."""

MEASURED: dict[str, list[tuple[int, int, dict[str, float]]]] = {
    "quick": [
        (2389, 2042, {"load": 0.4, "features": 3.1, "features_cached": 0.3, "starter": 3.1, "thetacov": 5.8,
          "bandpower": 7.8, "riemann": 22.6, "eegnet": 117.9, "mae": 34.3, "experts": 92.4, "fusion": 90.6,
          "fusion_lda": 0.9, "ensemble": 31.1, "nb01": 55.7, "nb02": 12.5, "nb03": 6.0, "nb04": 8.6,
          "nb05": 40.2}),
        (11943, 10209, {"load": 0.7, "features": 17.8, "features_cached": 1.2, "starter": 17.7, "thetacov": 29.8,
          "bandpower": 33.9, "riemann": 59.1, "eegnet": 515.0, "mae": 35.8, "experts": 189.4,
          "fusion": 294.2, "fusion_lda": 4.0, "ensemble": 129.1, "nb01": 153.8, "nb02": 14.9, "nb03": 7.4,
          "nb04": 15.2, "nb05": 107.0}),
    ],
}
"""Profile -> ``[(n_trials, n_train, {stage: CPU s}), ...]``: the stage tables of ``python -m kit profile-stages``
on :data:`MEASURED_ON` (the demo folder at scale 0.2 and a simulated folder at scale 1); ``nb05`` is its wall time
(the default ``grid`` rule scores its tables in two threads).  Third round: eegnet, ensemble and nb05 profiled
again on the demo, ensemble at scale 1; eegnet at scale 1 is the second round's 611 s times the demo's ratio
(117.9 / 139.9), nb05 at scale 1 its profiled 168 s less the pattern cell's recomputed caches (81 s there, 20 s in
``kit run``); the other stages are the second round's (their computation did not change).  Fourth round: nb01
profiled again on the demo; at scale 1 the third round's 173.3 s less 30 % of its Morlet cell's 65 s (the interleaved
A/B ratio of the smaller chunks, 0.70); eegnet left as it was (its band gradient 1-7 % of a fit, within noise)."""


def fit_costs(measured) -> dict[str, tuple[str, float, float, float]]:
    """Per stage ``(count, fixed s, s at 1,000 trials, power)`` through the measurements (two sizes).

    A line (power 1) through the two sizes; with one measurement the cost is taken as proportional to the
    trials; where the line would give a negative fixed cost (a stage that grows faster than the trials, such as
    the grid's sorts) a power law through both sizes (no fixed cost), and where it falls with the trials
    (a stage of fixed steps, such as the MAE's, measured once each under a different load) by a constant, the
    larger of the two times.

    Parameters
    ----------
    measured : list of (n_trials, n_train, dict of str -> float)

    Returns
    -------
    dict of str -> (str, float, float, float)

    Raises
    ------
    KitError
        No measurement.
    """
    if not measured:
        raise KitError("expected time: no measured stage costs")
    pts = sorted(measured, key=lambda m: m[0])
    small, large = pts[0], pts[-1]
    out = {}
    for stage, count in COUNTS.items():
        n = lambda m: m[0] if count == "all" else m[1]  # noqa: E731
        if stage not in large[2]:
            continue
        t1, n1 = float(large[2][stage]), n(large)
        if stage in small[2] and n(small) != n1:
            t0, n0 = float(small[2][stage]), n(small)
            slope = (t1 - t0) / (n1 - n0)
            fixed = t0 - slope * n0
            if fixed >= 0 and slope >= 0:
                out[stage] = (count, fixed, slope * 1000.0, 1.0)
                continue
            if slope < 0:
                out[stage] = (count, max(t0, t1), 0.0, 1.0)
                continue
            if t0 > 0:
                power = math.log(t1 / t0) / math.log(n1 / n0)
                out[stage] = (count, 0.0, t1 / (n1 / 1000.0) ** power, power)
                continue
        out[stage] = (count, 0.0, t1 / n1 * 1000.0, 1.0)
    return out


def costs(profile: str = "quick") -> dict[str, tuple[str, float, float]]:
    """:func:`fit_costs` of the profile's :data:`MEASURED` tables.

    Raises
    ------
    KitError
        A profile without measurements.
    """
    if not MEASURED.get(profile):
        raise KitError(f"no measured stage costs for profile {profile!r} "
                       f"(measured: {', '.join(p for p, m in MEASURED.items() if m) or 'none'})")
    return fit_costs(MEASURED[profile])


@dataclass
class Estimate:
    """Expected time of ``kit run`` (:func:`expected_run`).

    Attributes
    ----------
    n_trials, n_train : int
        The folder's trials in all and its training trials.
    profile : str
    stages : dict of str -> float
        Expected seconds of each stage of :data:`COUNTS`.
    foreground, background, final : float
        Notebooks 01-04 with their stages; when the anchors are done (the background process, with the helper
        once notebooks 01-04 are); notebook 05: s.
    critical : str
        ``"foreground"`` or ``"background"``: what notebook 05 waits for.
    total : float
        Expected wall time of the run, s.
    machine : str
        Where the constants were measured (:data:`MEASURED_ON`).
    """

    n_trials: int
    n_train: int
    profile: str
    stages: dict = field(default_factory=dict)
    foreground: float = 0.0
    background: float = 0.0
    final: float = 0.0
    critical: str = "foreground"
    total: float = 0.0
    machine: str = MEASURED_ON
    deferred: tuple = ()

    def line(self) -> str:
        """``expected 14 min on this machine (...)``: what ``kit run`` prints before it starts."""
        minutes = lambda s: f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"  # noqa: E731
        fg, bg = "01-04", "the anchors"
        if "nb01" in self.deferred:
            fg, bg = "02-04", "the anchors and notebook 01"
        return (f"expected {minutes(self.total)} on this machine ({self.n_trials:,} trials, profile {self.profile}: "
                f"notebooks {fg} {minutes(self.foreground)} beside {bg}, done after {minutes(self.background)}, "
                f"then notebook 05 {minutes(self.final)}; from the stage costs measured on "
                f"{self.machine.split(';')[0]})")


def stage_seconds(n_trials: int, n_train: int, profile: str = "quick", *, speed: float = 1.0) -> dict[str, float]:
    """Expected seconds of each stage of :data:`COUNTS` for a folder of ``n_trials`` trials (``n_train`` labelled).

    Parameters
    ----------
    n_trials, n_train : int
        All trials and the training trials.
    profile : str
        A profile with measured costs (``quick``).
    speed : float
        This machine's speed relative to :data:`MEASURED_ON` (2.0: twice as fast).

    Returns
    -------
    dict of str -> float

    Raises
    ------
    KitError
        A profile without measured costs, counts that are not positive, ``n_train > n_trials``.
    """
    table = costs(profile)
    if n_train <= 0 or n_trials < n_train:
        raise KitError(f"expected time: need 0 < n_train <= n_trials, got {n_train} and {n_trials}")
    if speed <= 0:
        raise KitError(f"expected time: speed must be positive, got {speed}")
    n = {"all": n_trials, "train": n_train}
    return {stage: (fixed + per_1000 * (n[count] / 1000.0) ** power) / speed
            for stage, (count, fixed, per_1000, power) in table.items()}


def count_trials(data) -> tuple[int, int]:
    """``(n_trials, n_train)`` of a data folder (read with :func:`kit.data.dataset.load_dataset`: seconds at full size).

    Raises
    ------
    KitError
        A missing or unreadable data folder.
    """
    from kit.data.dataset import load_dataset

    ds = load_dataset(Path(data))
    return len(ds), int((~ds.is_test).sum())


def _counts(data, n_trials: int | None, n_train: int | None) -> tuple[int, int]:
    """``(n_trials, n_train)``: the counts given, the folder's where one is missing (:func:`count_trials`)."""
    if n_trials is None or n_train is None:
        if data is None:
            raise KitError("expected time: give a data folder or n_trials and n_train")
        counted = count_trials(data)
        n_trials = counted[0] if n_trials is None else n_trials
        n_train = counted[1] if n_train is None else n_train
    return int(n_trials), int(n_train)


def _estimate(n_trials: int, n_train: int, profile: str, seconds: dict, path, layout) -> Estimate:
    return Estimate(n_trials, n_train, profile, seconds, sum(path.foreground.values()), path.anchors_done,
                    sum(path.final.values()), path.critical, path.total,
                    deferred=tuple(k for k in layout if k.startswith("nb")))


def expected_run(data=None, *, n_trials: int | None = None, n_train: int | None = None, profile: str = "quick",
                 background=ANCHOR_ORDER, speed: float | None = None) -> Estimate:
    """Expected wall time of ``python -m kit run`` from empty artifacts, per stage and in all.

    Parameters
    ----------
    data : path, optional
        The data folder (its trials are counted); or give ``n_trials`` and ``n_train``.
    n_trials, n_train : int, optional
        Trial counts (all, training); override the folder's.
    profile : str
        The run's profile (costs are measured for ``quick``).
    background : sequence of str
        The anchors ``kit run`` trains in its second process (``kit.app.runner.PREFETCH["05_ensembling"]``).
    speed : float, optional
        This machine against :data:`MEASURED_ON`; default ``$KIT_SPEED`` or 1.

    Returns
    -------
    Estimate

    Raises
    ------
    KitError
        Neither a folder nor counts, a profile without costs, bad counts.
    """
    return plan_run(data, n_trials=n_trials, n_train=n_train, profile=profile, background=background, deferrable=(),
                    speed=speed)  # one layout: ``background`` as it is


def plan_run(data=None, *, n_trials: int | None = None, n_train: int | None = None, profile: str = "quick",
             background=ANCHOR_ORDER, deferrable=("nb01",), speed: float | None = None) -> Estimate:
    """The quicker of ``kit run``'s two layouts (:func:`kit.pipeline.critical.quicker_layout`): notebook 01 first
    in line, or executed by the anchors' processes (``deferrable``, :func:`kit.pipeline.critical.work_list`).

    On a small folder the anchors are done long before notebooks 02-04 and their core would idle: notebook 01
    goes there; at the competition's size the anchors (EEGNet) take as long as notebooks 01-04, and notebook 01
    stays first. ``Estimate.deferred`` names the notebooks moved (``"nb01"``); ties keep today's order.
    Arguments and errors as :func:`expected_run`.
    """
    n_trials, n_train = _counts(data, n_trials, n_train)
    seconds = stage_seconds(n_trials, n_train, profile, speed=_speed(speed))
    path, layout = quicker_layout(seconds, background, tuple(deferrable))
    return _estimate(n_trials, n_train, profile, seconds, path, layout)


def _speed(speed: float | None) -> float:
    return float(os.environ.get("KIT_SPEED", 1.0)) if speed is None else speed


def plan_line(data, profile: str = "quick", background=ANCHOR_ORDER, deferrable=()) -> tuple[str | None, tuple]:
    """``kit run``'s layout and the line it prints before it starts (:func:`plan_run`, :meth:`Estimate.line`):
    ``(line or None, notebooks to defer)``.

    ``deferrable``: notebook stems (``"01_eda_theta_power"``) the anchors' processes may execute. Without
    measured costs (another profile) or a readable folder (the run then reports its own error): ``(None, ())``,
    notebook 01 first as always; this never stops a run.
    """
    stems = {f"nb{stem[:2]}": stem for stem in deferrable}
    try:
        est = plan_run(data, profile=profile, background=background, deferrable=tuple(stems))
    except KitError:
        return None, ()
    return est.line(), tuple(stems[k] for k in est.deferred if k in stems)
