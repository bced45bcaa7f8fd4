"""``kit run``'s two processes from measured stage times, and which of them notebook 05 waits for.

The runner (:mod:`kit.app.runner`) executes notebooks 01-04 with the stages they compute in one process and
trains the anchors of :data:`kit.app.prefetch.PREFETCH` in a second one, then runs notebook 05.
:func:`run_layout` puts per-stage seconds (:func:`kit.pipeline.timing.profile_stages`, or
:mod:`kit.pipeline.estimate`'s) on those parts; :func:`critical_path` names the longer process and the run's
expected wall time.
"""

from __future__ import annotations

from dataclasses import dataclass

RUN_NOTEBOOKS = {"nb01": ("starter",), "nb02": ("mae",), "nb03": ("experts",), "nb04": ("fusion", "fusion_lda"),
                 "nb05": ("ensemble",)}
"""What each notebook computes in a run from empty artifacts, besides its own work (anchors of the
background process excluded: the runner trains them beside notebooks 01-04)."""


@dataclass
class CriticalPath:
    """``kit run``'s two processes, from the measured stages (:func:`critical_path`).

    Attributes
    ----------
    foreground : dict of str -> float
        Notebooks 01-04, each with the stages it computes in a run from empty artifacts, s.
    background : dict of str -> float
        The background process: loading the data, then the anchors it trains, s.
    final : dict of str -> float
        Notebook 05 (which fits the ensemble itself), s.
    critical : str
        ``"foreground"`` or ``"background"``: the longer of the two, which notebook 05 waits for.
    total : float
        Expected wall time of ``kit run``, s: ``max(foreground, background) + final``.
    slowest : str
        The longest single stage on the critical path.
    """

    foreground: dict
    background: dict
    final: dict
    critical: str
    total: float
    slowest: str


def run_layout(times: dict, background=("thetacov", "bandpower", "riemann", "eegnet")) -> tuple[dict, dict, dict]:
    """Seconds of ``kit run``'s foreground notebooks, background process and notebook 05, from stage times.

    Parameters
    ----------
    times : dict of str -> float
        Seconds per stage of :data:`STAGES` (missing stages count 0).
    background : sequence of str
        The anchors the runner trains in its second process (``kit.app.prefetch.PREFETCH["05_ensembling"]``).

    Returns
    -------
    foreground, background, final : dict of str -> float
        Per part: ``{name: s}``, e.g. ``{"nb03": ..., "experts": ..., "features (nb03)": ...}``.
    """
    t = lambda name: float(times.get(name, 0.0))  # noqa: E731
    fg = {}
    for nb in ("nb01", "nb02", "nb03", "nb04"):
        fg[nb] = t(nb)
        for stage in RUN_NOTEBOOKS[nb]:
            fg[stage] = t(stage)
    # the profiled notebooks 02 and 04 read or compute the features in a cell; notebook 03 (its stage
    # read from the artifacts) does not, while in a run its experts stage needs them
    if "features_cached" in times:  # on disk after notebook 02: 02 computes and writes them, 03 reads them
        fg["features (nb02 writes)"] = max(t("features") - t("features_cached"), 0.0)
        fg["features (nb03 reads)"] = t("features_cached")
    else:
        fg["features (nb03)"] = t("features")
    bg = {"load": t("load"), **{name: t(name) for name in background}}
    final = {"nb05": t("nb05")}  # notebook 05 fits the ensemble itself (it is never read from the artifacts)
    return fg, bg, final


def critical_path(times: dict, background=("thetacov", "bandpower", "riemann", "eegnet")) -> CriticalPath:
    """Which of ``kit run``'s two processes notebook 05 waits for, and the run's expected wall time.

    Parameters
    ----------
    times : dict of str -> float
        Seconds per stage (:func:`profile_stages`' ``times`` as seconds, or :mod:`kit.pipeline.estimate`'s).
    background : sequence of str
        The background process's anchors.

    Returns
    -------
    CriticalPath
    """
    fg, bg, final = run_layout(times, background)
    a, b = sum(fg.values()), sum(bg.values())
    critical = "foreground" if a >= b else "background"
    on_path = {**(fg if critical == "foreground" else bg), **final}
    return CriticalPath(fg, bg, final, critical, max(a, b) + sum(final.values()),
                        max(on_path, key=on_path.get))
