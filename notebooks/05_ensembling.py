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
# theta-covariance recipe, a log band-power anchor over all five bands, EEGNet-8,2, the FOMAML
# experts (averaged) and the fusion model. Each is put on
# one scale per subject, blended with non-negative weights, and post-processed along time
# (none, smoothing, the trial's mean over the whole second or over 0.3-0.7 s / 0.4-0.6 s
# broadcast to all samples, or a blend): the window metric rewards a **sustained**
# above-chance AUC, not a brief peak. The ten best candidates are averaged.
#
# Weights and post-processing are chosen on out-of-fold predictions only. The ensemble's own
# LOSO score is **nested**: subject k is predicted with the blend chosen on the other
# subjects' **cross-fitted** predictions, made by models that never saw subject k (each stage
# trains 10 such models besides its LOSO folds). Choosing on the plain out-of-fold predictions
# instead lets k's labels leak back through the models that made them: on null data that
# lifted the ensemble by about 0.01. The submission is validated before it is written.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full"
FORCE = False  # recompute the baselines even if their artifacts exist

# %%
import numpy as np

from kit import pipeline
from kit.paths import output_root
from kit.plots import plot_auc_timecourse
from kit.submission import validate_submission, expected_ids

run = pipeline.open_run(DATA, PROFILE)
COMPONENTS = pipeline.ENSEMBLE_COMPONENTS  # every anchor and the deep stages; drop names to blend fewer
for name in COMPONENTS:
    if name in pipeline.BASELINES:
        pipeline.run_baseline_stage(run, name, force=FORCE)

# %%
result = pipeline.run_ensemble_stage(run, components=COMPONENTS)
print(result.table.to_string(index=False))
print("chosen blends (averaged):")
for c in result.chosen:
    print(f"  {c.score:.4f}  {c.label()}")

# %%
curves = {k: np.array(v["curve"]) for k, v in result.scores.items()}
windows = {k: tuple(v["window"]) if v["window"][0] is not None else None for k, v in result.scores.items()}
fig = plot_auc_timecourse(curves, run.train.times, window=windows,
                          save_dir=output_root() / "reports" / "figures", name="05_ensemble_auc_timecourse")

# %% [markdown]
# ## The submission
# `id = {subject}_{trial}_{sample}`, one row per test trial and sample, P(emotional) in [0, 1].
# Submit with `python -m kit submit <file> -m "message"` or
# `kaggle competitions submit -c predicting-emotions-using-brain-waves -f <file> -m "message"`.

# %%
te = run.test
df = validate_submission(result.submission, expected_ids(te.subject, te.trial))
print(f"{result.submission}: {len(df):,} rows, valid")
df.head()
