"""``kit run``'s two processes from measured stage times, and which of them notebook 05 waits for.

The runner (:mod:`kit.app.runner`) executes notebooks 01-04 with the stages they compute in one process and
trains the anchors of :data:`kit.app.prefetch.PREFETCH` in a second one, in that order; when notebooks 01-04 are
done first, a helper process takes the anchors left from the other end of the list; then notebook 05 runs.
Notebook 01 may be in the anchors' list instead (``"nb01"`` in ``background``, :func:`work_list`):
executed by whichever of the two processes claims it, with the starter it computes.
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


ANCHOR_ORDER = ("features", "riemann", "starter", "eegnet", "bandpower", "thetacov")
"""The background process's list in its order (:data:`kit.app.prefetch.PREFETCH`): the deep features' cache, then
the anchors (the starter too: notebook 01 finds it done)."""


EARLY = ("features", "starter")
"""Work in the anchors' list only for the foreground's sake: the features' cache (notebook 02 reads it) and the
starter (notebook 01 trains it otherwise).  With notebook 01 deferred, notebook 02 starts the foreground at once and
would race the process for the features, and notebook 01 trains its starter itself: :func:`work_list` drops both."""


def work_list(anchors, notebooks=()) -> tuple:
    """The list ``kit run``'s anchor processes share: ``anchors`` in order, with the deferred ``notebooks`` right
    after EEGNet (the long one; at the end without it), before the short anchors that the helper takes from the end
    (:func:`share_anchors`); with notebooks deferred, without the :data:`EARLY` items."""
    items = [a for a in anchors if not (notebooks and a in EARLY)]
    at = items.index("eegnet") + 1 if "eegnet" in items else len(items)
    items[at:at] = list(notebooks)
    return tuple(items)


def share_anchors(start_helper: float, load: float, anchors: dict) -> tuple[float, dict, dict]:
    """The anchors on the background process and on the helper, as the runner shares them.

    The background process starts at ``load`` s and takes the anchors in order; the helper starts at
    ``start_helper`` s (notebooks 01-04 done) and takes them from the end; whichever is free first claims the
    next one (:func:`kit.app.prefetch.claim`).

    Parameters
    ----------
    start_helper, load : float
        s from the start of the run.
    anchors : dict of str -> float
        Seconds of each anchor, in the background process's order.

    Returns
    -------
    done : float
        When the last anchor is done, s.
    background, helper : dict of str -> float
        The anchors each process trains.
    """
    names = list(anchors)
    i, j, t_bg, t_help, bg, helper = 0, len(names) - 1, float(load), float(start_helper), {}, {}
    while i <= j:
        if t_bg <= t_help:
            bg[names[i]] = anchors[names[i]]
            t_bg += anchors[names[i]]
            i += 1
        else:
            helper[names[j]] = anchors[names[j]]
            t_help += anchors[names[j]]
            j -= 1
    return (max(t_bg, t_help) if helper else t_bg), bg, helper


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
        Expected wall time of ``kit run``, s: ``max(foreground, anchors done) + final``.
    helper : dict of str -> float
        The anchors the helper process takes once notebooks 01-04 are done (:func:`share_anchors`), s.
    anchors_done : float
        When the last anchor is done, s from the start (both processes).
    slowest : str
        The longest single stage on the critical path.
    """

    foreground: dict
    background: dict
    final: dict
    critical: str
    total: float
    slowest: str
    helper: dict
    anchors_done: float


def run_layout(times: dict, background=ANCHOR_ORDER) -> tuple[dict, dict, dict]:
    """Seconds of ``kit run``'s foreground notebooks, background process and notebook 05, from stage times.

    Parameters
    ----------
    times : dict of str -> float
        Seconds per stage of :data:`STAGES` (missing stages count 0).
    background : sequence of str
        The anchors the runner trains in its second process (``kit.app.prefetch.PREFETCH["05_ensembling"]``),
        in its order; ``"nb01"`` among them: notebook 01 executed there (with its starter), not in the foreground.

    Returns
    -------
    foreground, background, final : dict of str -> float
        Per part: ``{name: s}``, e.g. ``{"nb03": ..., "experts": ..., "features (nb03)": ...}``.
    """
    t = lambda name: float(times.get(name, 0.0))  # noqa: E731
    fg = {}
    for nb in ("nb01", "nb02", "nb03", "nb04"):
        if nb in background:  # executed in the anchors' processes
            continue
        fg[nb] = t(nb)
        for stage in RUN_NOTEBOOKS[nb]:
            if stage not in background:  # the starter: trained by the anchors' process, found done
                fg[stage] = t(stage)
    # the profiled notebooks 02 and 04 read or compute the features in a cell; notebook 03 (its stage
    # read from the artifacts) does not, while in a run its experts stage needs them
    if "features" in background:  # written by the anchors' process: notebook 02's cell and 03 read them
        fg["features (nb03 reads)"] = t("features_cached")
    elif "features_cached" in times:  # on disk after notebook 02: 02 computes and writes them, 03 reads them
        fg["features (nb02 writes)"] = max(t("features") - t("features_cached"), 0.0)
        fg["features (nb03 reads)"] = t("features_cached")
    else:
        fg["features (nb03)"] = t("features")
    bg = {"load": t("load"), **{name: t(name) + sum(t(s) for s in RUN_NOTEBOOKS.get(name, ()) if s not in background)
                                for name in background}}
    final = {"nb05": t("nb05")}  # notebook 05 fits the ensemble itself (it is never read from the artifacts)
    return fg, bg, final


def critical_path(times: dict, background=ANCHOR_ORDER) -> CriticalPath:
    """Which of ``kit run``'s two processes notebook 05 waits for, and the run's expected wall time.

    Parameters
    ----------
    times : dict of str -> float
        Seconds per stage (:func:`profile_stages`' ``times`` as seconds, or :mod:`kit.pipeline.estimate`'s).
    background : sequence of str
        The background process's anchors, in its order.

    Returns
    -------
    CriticalPath
    """
    fg, bg, final = run_layout(times, background)
    a = sum(fg.values())
    done, ours, helper = share_anchors(a, bg["load"], {k: v for k, v in bg.items() if k != "load"})
    critical = "foreground" if a >= done else "background"
    on_path = {**(fg if critical == "foreground" else {**ours, **helper}), **final}
    return CriticalPath(fg, {"load": bg["load"], **ours}, final, critical, max(a, done) + sum(final.values()),
                        max(on_path, key=on_path.get), helper, done)


def quicker_layout(times: dict, background=ANCHOR_ORDER, deferrable=("nb01",)) -> tuple[CriticalPath, tuple]:
    """The layout ``kit run`` picks (:func:`kit.pipeline.estimate.plan_run`): ``background`` as it is, or with the
    ``deferrable`` notebooks in the anchors' list (:func:`work_list`), whichever :func:`critical_path` ends
    sooner (ties keep ``background``).  Returns that path and its list."""
    layouts = [tuple(background)] + ([work_list(background, deferrable)] if deferrable else [])
    return min(((critical_path(times, layout), layout) for layout in layouts), key=lambda pl: pl[0].total)
