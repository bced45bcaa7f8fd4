# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Ensembling and the submission
#
# Components: the organisers' starter (theta power, per-sample LDA), the 2nd-place
# theta-covariance recipe, a log band-power anchor over all five bands, EEGNet-8,2, a Riemannian
# tangent-space classifier with per-subject re-centring, the channel experts and the fusion model.
# Each is put on one scale per subject (z-scored logits), then a **rule** combines them, from the
# simplest: `best` (the single component with the best score), `significant` (the mean of the
# components whose per-subject AUC beats chance by a one-sided bootstrap over subjects, Bonferroni
# over components), `stack` (a non-negative, strongly L2-penalised logistic stacker), `sigstack`
# (`stack` on the significant components only) and `grid` (a weight grid, its ten best blends
# averaged). Each rule also picks a post-processing along time from a small family (the cell below
# lists the one this run uses): the window metric rewards a **sustained** above-chance AUC, not a
# brief peak.
#
# Everything is chosen on out-of-fold predictions only. The ensemble's own LOSO score is **nested**:
# subject k is predicted with the rule fitted on the other subjects' **cross-fitted** predictions,
# made by models that never saw subject k. The default rule is the one whose worst difference to the
# best single component, over the bench's folders, was the least negative (README, "Ensembling").
# The submission is validated before it is written; the last cells give the one line that sums the
# blend up, and what a Kaggler checks before submitting.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full"
FORCE = False  # recompute the baselines even if their artifacts exist
RULE = None  # None = the default rule (kit.pipeline.ensemble.EnsembleConfig.rule); or "best", "significant", "stack", "grid"
COMPARE = None  # rules scored beside RULE; None = EnsembleConfig.compare (the four cheap ones)

# %%
import dataclasses

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from kit.methods import patterns
from kit.methods.registry import ANCHORS, ENSEMBLE_COMPONENTS
from kit.pipeline import stages
from kit.pipeline.profiles import stage_config
from kit.pipeline.submission import expected_ids, validate_submission
from kit.pipeline.summary import run_summary
from kit.report import findings
from kit.report.models import window_mean
from kit.report.plots import plot_auc_timecourse, plot_band_importance, plot_channel_matrix, plot_subject_auc, plot_topomaps
from kit.store.paths import output_root

run = stages.open_run(DATA, PROFILE)
display(Markdown(findings.intro_for(run)))
COMPONENTS = ENSEMBLE_COMPONENTS  # every anchor and the deep stages; drop names to blend fewer
for name in COMPONENTS:
    if name in ANCHORS:  # `kit run` trains them in the background while 01-04 run: then they are reused here
        run.verbose = FORCE or not (run.artifacts / name / "stage.json").is_file()  # bars if training, no log if reused
        stages.run_baseline_stage(run, name, force=FORCE)
run.verbose = False

# %%
cfg = stage_config("ensemble", PROFILE)
if RULE is not None:
    cfg = dataclasses.replace(cfg, rule=RULE)
if COMPARE is not None:
    cfg = dataclasses.replace(cfg, compare=tuple(COMPARE))
print(f"rule {cfg.rule}; post-processings tried: " + ", ".join(
    k if k != "smooth" else f"moving average over {p:g} samples ({p / run.train.sfreq:.3f} s)" for k, p in cfg.post))
result = stages.run_ensemble_stage(run, cfg, components=COMPONENTS)
tr = run.train
pd.DataFrame([{"method": k, "LOSO score": round(v["loso_score"], 4), "window (s)": findings.window_text(v, tr.times),
               "mean AUC over samples": round(v["mean_auc"], 4)} for k, v in result.scores.items()])

# %% [markdown]
# The rules of `COMPARE` and the configured one, scored the same way (nested LOSO; the submission
# uses the configured rule; `python -m kit rules` scores every rule on several folders). The
# ensemble against the best single component (chosen with hindsight), with a paired bootstrap
# interval over subjects, is in the one line at the end.

# %%
pd.DataFrame({"nested LOSO score": {k: round(v, 4) for k, v in result.rules.items()}}).rename_axis("rule")

# %% [markdown]
# Per held-out subject: the blend the rule chose without that subject's labels, and its score on
# the subjects it was chosen on (inner score: optimistic, those subjects chose it). A rule that
# keeps changing its mind from subject to subject is choosing on noise; the table gives each
# component's weight over the held-out subjects (0 where a subject's blend left it out).

# %%
rows, verdict = findings.blend_stability(result.per_subject)
inner = [r["inner_score"] for r in result.per_subject]
print(verdict + f" Inner scores {min(inner):.4f}-{max(inner):.4f}.")
pd.DataFrame(rows)  # every held-out subject's blend: result.per_subject

# %% [markdown]
# The submission's blend, fitted on all training subjects (inner score: on those same subjects).

# %%
pd.DataFrame([{"blend": c.label(), "inner score (in-sample)": round(c.score, 4)} for c in result.chosen])

# %%
curves = {k: np.array(v["curve"]) for k, v in result.scores.items()}
windows = {k: tuple(v["window"]) if v["window"][0] is not None else None for k, v in result.scores.items()}
fig = plot_auc_timecourse(curves, run.train.times, window=windows,
                          title="every component and the ensemble: LOSO AUC per sample (mean over subjects)",
                          save_dir=output_root() / "reports" / "figures", name="05_ensemble_auc_timecourse")
fig = plot_subject_auc({k: v["per_subject_auc"] for k, v in result.scores.items()},
                       title=f"per-subject AUC of every component and the ensemble ({len(tr.subjects)} held-out "
                             "subjects)",
                       save_dir=output_root() / "reports" / "figures", name="05_subject_auc")

# %% [markdown]
# ## What the anchors look at
# The linear anchors fitted once on every training subject (the models the submission
# uses are fitted the same way on all but one subject per fold). For each, the weights and
# their activation patterns (Haufe et al., NeuroImage 2014: `cov(features) @ w / var(output)`,
# where the decoded signal lives; weights also cancel noise and are not to be read as
# sources). The starter's per-sample LDA on z-scored theta power, averaged over 0.4-0.6 s;
# the 2nd-place theta-covariance LDA as a channel x channel map (the diagonal is theta power,
# the rest the covariance of two channels); the band-power anchor's chosen band(s) and window; the
# Riemannian anchor's pattern on its chosen band(s), one channel x channel map per band (each entry a
# coordinate of the re-centred covariance in the tangent space); then, under LOSO, how much each band is
# worth to a log-variance LDA over all five bands on new subjects: the drop in held-out AUC
# when that band's features are shuffled across the subject's trials.

# %%
FIGURES = output_root() / "reports" / "figures"
tr = run.train
counts = f"{len(tr.subjects)} subjects, {len(tr)} trials"
sp = patterns.starter_patterns(tr.X, tr.y, tr.subject, tr.sfreq)
fig = plot_topomaps({"starter weights": window_mean(sp["weights"], tr.times, 0.4, 0.6),
                     "starter pattern": window_mean(sp["patterns"], tr.times, 0.4, 0.6)}, tr.ch_names,
                    unit="z theta power per unit LDA output", title=f"organisers' starter, 0.4-0.6 s ({counts})",
                    save_dir=FIGURES, name="05_starter_patterns")
tp = patterns.thetacov_patterns(tr.X, tr.y, tr.subject, tr.sfreq)  # channel x channel (theta covariance)
fig = plot_channel_matrix({"theta-covariance weights": tp["weights"], "pattern": tp["patterns"]}, tr.ch_names,
                          unit="per unit LDA output", title=f"2nd-place theta covariance, 0.35-0.65 s ({counts})",
                          mask=~tp["selected"], save_dir=FIGURES, name="05_thetacov_patterns")
train_rows = ~run.dataset.is_test  # the anchors' features of the training trials, from the run's cache
bp = patterns.bandpower_patterns(tr.X, tr.y, tr.subject, tr.sfreq,
                                 features=run.anchor_inputs("bandpower")[train_rows])
fig = plot_topomaps({f"{b} pattern": p for b, p in zip(bp["bands"], bp["patterns"])}, tr.ch_names,
                    unit="z log-variance per unit LDA output",
                    title=f"band-power anchor, chosen {findings.choice_in_seconds(bp['choice'], tr.sfreq)} ({counts})",
                    save_dir=FIGURES,
                    name="05_bandpower_patterns")
rp = patterns.riemann_patterns(tr.X, tr.y, tr.subject, tr.sfreq,  # per chosen band: channel x channel
                               features=run.anchor_inputs("riemann")[train_rows])
fig = plot_channel_matrix({f"{b} pattern": p for b, p in zip(rp["bands"], rp["patterns"])}, tr.ch_names,
                          unit="z tangent coordinate per unit LDA output",
                          title=f"riemann anchor, chosen {rp['choice']}: re-centred covariance pattern ({counts})",
                          save_dir=FIGURES, name="05_riemann_patterns")
importance = patterns.band_permutation_importance(tr.X, tr.y, tr.subject, tr.sfreq, seed=0)
fig = plot_band_importance(importance, n_trials=len(tr), save_dir=FIGURES, name="05_band_importance")
pd.DataFrame({"band": importance["bands"], "importance (drop in AUC)": importance["importance"].round(4),
              "SEM over subjects": importance["sem"].round(4)})

# %% [markdown]
# ## The submission
# `id = {subject}_{trial}_{sample}`, one row per test trial and sample, P(emotional) in [0, 1].
# Submit with `python -m kit submit <file> -m "message"` or
# `kaggle competitions submit -c predicting-emotions-using-brain-waves -f <file> -m "message"`.

# %%
te = run.test
if result.submission is not None:
    df = validate_submission(result.submission, expected_ids(te.subject, te.trial))
    print(f"{result.submission.name}: {len(df):,} rows ({len(te)} test trials x {len(te.times)} samples), valid; "
          f"in {result.submission.parent}")

# %% [markdown]
# ## The run in one line, and what to check before submitting
# The line below names the blend's components with their weights, the ensemble's LOSO score with
# its 95 % bootstrap interval over subjects, and its difference to the best single component. Then
# the spread a 3-subject leaderboard adds, and each test subject's predictions: a subject whose
# trials all land on one side of 0.5, or whose predictions barely vary, is worth a look.

# %%
summary = run_summary(run.artifacts, profile=PROFILE)
print(findings.ensemble_line(summary))

# %%
display(Markdown(findings.ensemble_findings(summary)))
