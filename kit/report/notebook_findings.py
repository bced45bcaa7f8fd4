"""Notebooks 01-04's "What this run found" cells, in words computed from their numbers.

Each function takes results the kit computed (cluster tests, LOSO scores, the MAE's reconstruction error, the
experts' and the fusion's scores) and returns markdown; nothing here states a finding its inputs do not carry
(no cluster is named unless a test found it at p < alpha, no sleep physiology unless the data are sleep
recordings).  The shared pieces (windows in seconds, the data's description) and notebook 05's text are in
:mod:`kit.report.findings`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from kit.eval.clusters import ClusterTest, TFRTest
from kit.eval.effects import cluster_effect_size
from kit.report.findings import overlap_untrusted, window_clause


def cluster_sentence(test: ClusterTest | TFRTest, *, what: str, spatial: bool = False) -> str:
    """One sentence on a cluster test: the significant clusters with their statistics, or that there is none.

    ``"theta, channel mean: a cluster at 0.400-0.620 s, emotional > neutral (sum of t = 45.1, p = 0.013,
    dz = 0.92 [0.29, 1.53])."`` or ``"theta, channel mean: no cluster at p < 0.05 (smallest p = 0.310,
    0.100-0.200 s)."`` or ``"...: no cluster at p < 0.05 (no sample passed the threshold)."``.
    """
    sig = test.significant()
    if not sig:
        if not test.clusters:
            return f"{what}: no cluster at p < {test.alpha:g} (no sample passed |t| > {test.threshold:.2f})."
        c = test.clusters[0]
        where = f", {c.fmin:g}-{c.fmax:g} Hz" if hasattr(c, "fmin") else ""
        return (f"{what}: no cluster at p < {test.alpha:g} (smallest p = {c.p_value:.3f}, "
                f"{c.tmin:.3f}-{c.tmax:.3f} s{where}).")
    parts = []
    for c in sig:
        es = cluster_effect_size(test, c)
        sign = "emotional > neutral" if c.t_sum > 0 else "emotional < neutral"
        where = ""
        if hasattr(c, "fmin"):
            where = f", {c.fmin:g}-{c.fmax:g} Hz"
        elif spatial:
            where = f" over {' '.join(c.channels)}"
        parts.append(f"{c.tmin:.3f}-{c.tmax:.3f} s{where}, {sign} (sum of t = {c.t_sum:.1f}, p = {c.p_value:.3f}, "
                     f"{es.describe()})")
    head = "a cluster at " if len(parts) == 1 else f"{len(parts)} clusters: "
    return f"{what}: {head}{'; '.join(parts)}."


# ----------------------------------------------------------------------------- notebook 01
def eda_findings(*, time_test: ClusterTest, space_test: ClusterTest, band_rows: Sequence[Mapping],
                 tfr_test: TFRTest, evoked_tests: Mapping[str, ClusterTest], starter: Mapping,
                 times: Sequence[float], trusted: tuple[float, float] | None = None,
                 permutation: Mapping | None = None, sleep: bool = False) -> str:
    """Notebook 01's closing cell, from its cluster tests, its band table and the starter's LOSO result.

    Parameters
    ----------
    time_test, space_test : ClusterTest
        Theta over time (channel mean) and over channels x time.
    band_rows : sequence of dict
        :func:`kit.eval.clusters.band_cluster_table`.
    tfr_test : TFRTest
    evoked_tests : mapping region -> ClusterTest
    starter : dict
        :func:`kit.eval.cv.loso_score` of the starter.
    times : sequence of float
        s after the cue.
    trusted : (float, float), optional
        Theta's trusted span (s, :func:`kit.signal.edges.edge_effect`).
    permutation : dict, optional
        :func:`kit.pipeline.significance.starter_permutation_test`.
    sleep : bool
        The data are sleep recordings (or simulated sleep): only then is the paper's sleep result compared.

    Returns
    -------
    str
        Markdown: a bullet list.
    """
    lines = ["### What this run found", ""]
    lines.append("* " + cluster_sentence(time_test, what="Theta power over time (channel mean)"))
    lines.append("* " + cluster_sentence(space_test, what="Theta over channels x time", spatial=True))
    sig_bands = [r for r in band_rows if r["significant"]]
    if sig_bands:
        lines.append("* Bands with a cluster at p < 0.05 (channels x time): "
                     + "; ".join(f"{r['band']} ({r['clusters']})" for r in sig_bands) + ".")
    elif band_rows:
        smallest = min(band_rows, key=lambda r: r["min_p"])
        lines.append(f"* No band shows a cluster at p < 0.05 over channels x time (smallest p: {smallest['band']} "
                     f"{smallest['min_p']:.3f}).")
    lines.append("* " + cluster_sentence(tfr_test, what="Time x frequency (Morlet, channel mean)"))
    found = {r: t.significant() for r, t in evoked_tests.items()}
    with_cluster = [r for r, s in found.items() if s]
    if with_cluster:
        lines.append("* Evoked response: the classes differ in " + "; ".join(
            f"{r} ({', '.join(f'{c.tmin:.2f}-{c.tmax:.2f} s, p = {c.p_value:.3f}' for c in found[r])})"
            for r in with_cluster) + ".")
    elif evoked_tests:
        lines.append(f"* Evoked response: no region shows a class difference at p < 0.05 "
                     f"({len(evoked_tests)} regions tested).")
    n_tests = 2 + len(band_rows) + 1 + len(evoked_tests)
    lines.append(f"* {n_tests} cluster tests were run here (theta over time and over channels x time, "
                 f"{len(band_rows)} bands, time x frequency, {len(evoked_tests)} evoked regions), each at "
                 f"alpha = {time_test.alpha:g} with no correction across tests: about "
                 f"{n_tests * time_test.alpha:.1f} false positives are expected by chance among them if nothing "
                 "differs. Cohen's dz is computed on the cluster the test found, so it overstates the effect.")
    score = starter["loso_score"]
    text = f"* The organisers' starter scores {score:.4f} leave-one-subject-out ({window_clause(starter, times)}"
    share = overlap_untrusted(starter, times, trusted)
    if share > 0:
        text += f"; {100 * share:.0f} % of that window lies in the samples the theta filter's edge effect spoils"
    text += ")"
    if permutation is not None:
        p = permutation["p_value"]
        verdict = "above chance" if p < 0.05 else "not distinguishable from chance"
        text += (f"; against {permutation['n_permutations']} label permutations within subjects (null mean "
                 f"{permutation['null_mean']:.4f}, 95th percentile {permutation['null_p95']:.4f}) it is {verdict} "
                 f"(p = {p:.3f})")
    lines.append(text + ".")
    if sleep:
        sig = time_test.significant() + space_test.significant()
        if any(c.tmin <= 0.6 and c.tmax >= 0.4 for c in sig):
            lines.append("* A theta cluster overlaps 0.4-0.6 s, where the paper (Abdellahi et al. 2025) found its "
                         "effect after emotional cues in NREM sleep.")
        else:
            lines.append("* No theta cluster overlaps 0.4-0.6 s, where the paper (Abdellahi et al. 2025) found its "
                         "effect in NREM sleep.")
    lines += ["", "The metric scores the **longest** run of samples above chance, not the peak: notebooks 02-05 "
                  "learn features from all five bands and blend every model with this starter."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- notebook 02
def mae_findings(mse: float, reference: float, *, n_params: int, n_trials: int, epochs: int) -> str:
    """Notebook 02's closing cell: did the masked autoencoder learn more than smoothness?"""
    gain = 1.0 - mse / reference if reference > 0 else 0.0
    if mse < reference:
        verdict = (f"{100 * gain:.0f} % below copying the nearest visible sample ({reference:.4f}): the encoder "
                   "learned structure beyond the features' smoothness")
    else:
        verdict = (f"not below copying the nearest visible sample ({reference:.4f}): in {epochs} "
                   f"epoch{'s' if epochs != 1 else ''} the encoder has learned no more than the features' "
                   "smoothness")
    return "\n".join(["### What this run found", "",
                      f"* The encoder ({n_params:,} parameters, {epochs} epoch{'s' if epochs != 1 else ''} on "
                      f"{n_trials:,} trials, no labels) "
                      f"reconstructs masked samples with a mean squared error of {mse:.4f} (z-score², fresh "
                      f"masks; predicting 0 gives 1.0), {verdict}.",
                      "* Notebook 03 reads this frozen encoder's tokens."])


# ----------------------------------------------------------------------------- notebook 03
def experts_findings(per_channel: Mapping[str, float], score: Mapping, times: Sequence[float], *,
                     steps: Sequence[int], max_steps: int, n_subjects: int) -> str:
    """Notebook 03's closing cell: which channels decode, the experts' LOSO score, what early stopping chose."""
    items = sorted(per_channel.items(), key=lambda kv: -kv[1])
    above = [k for k, v in items if v > 0.5]
    steps = np.asarray(steps).ravel()
    stopped = int((steps < max_steps).sum())
    lines = ["### What this run found", "",
             f"* {len(above)} of {len(items)} channel experts have a mean per-subject AUC above 0.5 "
             f"(best {items[0][0]} {items[0][1]:.3f}, worst {items[-1][0]} {items[-1][1]:.3f}; "
             f"{n_subjects} held-out subjects).",
             f"* The experts' mean trial logit scores {score['loso_score']:.4f} leave-one-subject-out "
             f"({window_clause(score, times)}; mean AUC {score['mean_auc']:.4f}).",
             f"* Early stopping on held-out training subjects ended {stopped} of {len(steps)} models before the "
             f"{max_steps} steps of the profile (median {int(np.median(steps))} steps): a progress bar that stops "
             "short of 100 % is early stopping, not an interruption."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- notebook 04
def fusion_findings(scores: Mapping[str, Mapping], times: Sequence[float], *, moved: int, n_folds: int) -> str:
    """Notebook 04's closing cell: the fusions against the experts' mean, and whether the network moved."""
    best = max(scores, key=lambda k: scores[k]["loso_score"])
    lines = ["### What this run found", ""]
    for k, s in scores.items():
        lines.append(f"* {k}: LOSO {s['loso_score']:.4f} ({window_clause(s, times)}; mean AUC "
                     f"{s['mean_auc']:.4f})" + (" — the best of the three" if k == best else "") + ".")
    if moved == 0:
        lines.append(f"* Early stopping kept the cross-channel network at zero in all {n_folds} folds: the `fusion` "
                     "component is the shrinkage LDA on the re-centred covariances (the riemann readout); its "
                     "attention carries no decision.")
    else:
        lines.append(f"* The cross-channel network moved away from the LDA readout in {moved} of {n_folds} folds.")
    return "\n".join(lines)
