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
# # 04 · Fusion: a model that sees how channels co-vary
#
# Each of the 16 experts (notebook 03) sees one channel, and a channel's band power has no phase: no
# combination of per-channel scores can rebuild the zero-lag covariance of two channels, where a
# spatial effect lives. This notebook fits two fusions, each under leave-one-subject-out:
#
# * `fusion` (the pipeline's): every channel becomes a **token**, built from its frozen MAE encoder
#   sequence (attention-pooled over time) and its row of the **re-centred tangent matrices** of the
#   band-passed signal (theta, 8-30 Hz and delta covariances, whole trial and 0.35-0.65 s, each
#   subject whitened by its own Riemannian mean): entry (i, j) says how channels i and j co-vary in that
#   trial. A learned channel embedding and a CLS token go through a cross-channel Transformer layer. Its
#   output is a *residual* on a shrinkage LDA of the tangent coordinates (the riemann anchor's readout):
#   the network starts at zero and moves away from the LDA only as far as held-out validation subjects
#   reward (early stopping; epoch 0 = the LDA alone).
# * `fusion_lda` (the simple reference): shrinkage LDA on the 16 experts' trial logits, fitted on
#   their **cross-fitted** outputs (expert models that never saw the trial's subject).
#
# The cell below names this run's data; the last cell compares the fusions with the experts' mean
# and says whether the network moved away from its LDA readout.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full"
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from kit.deep.channel_fusion import channel_attention, load_channel_fusion
from kit.deep.fusion import fusion_pattern
from kit.eval.cv import loso_score
from kit.pipeline import stages
from kit.pipeline.profiles import stage_config
from kit.report import findings, notebook_findings
from kit.report.plots import plot_auc_timecourse, plot_channel_matrix, plot_topomaps
from kit.store.paths import output_root

run = stages.open_run(DATA, PROFILE)
cfg = stage_config("fusion", PROFILE)
FIGURES = output_root() / "reports" / "figures"
tr = run.train
display(Markdown(findings.intro_for(run)))

# %%
run.verbose = FORCE or not (run.artifacts / "fusion" / "stage.json").is_file()  # the bar when it trains
fused = stages.run_fusion_stage(run, cfg, force=FORCE)
run.verbose = FORCE or not (run.artifacts / "fusion_lda" / "stage.json").is_file()
reference = stages.run_fusion_lda_stage(run, force=FORCE)
experts = stages.load_components(run, ("experts",))["experts"]["oof"]
scores = {"experts (mean of 16)": loso_score(experts, tr.y, tr.subject),
          "fusion_lda (reference)": loso_score(reference["oof"], tr.y, tr.subject),
          "fusion": loso_score(fused["oof"], tr.y, tr.subject)}
table = pd.DataFrame({"LOSO score": {k: round(v["loso_score"], 4) for k, v in scores.items()},
                      "window (s)": {k: findings.window_text(v, tr.times) for k, v in scores.items()},
                      "mean AUC over samples": {k: round(v["mean_auc"], 4) for k, v in scores.items()}})
moved = int((fused["best_epoch"] > 0).sum())
print(f"The network moved away from the LDA readout in {moved} of {len(fused['best_epoch'])} LOSO folds "
      f"(epochs kept by early stopping: {int(fused['best_epoch'].min())}-{int(fused['best_epoch'].max())}).")
table

# %% [markdown]
# ## What the fusion looks at across channels
# The last cross-channel layer's attention, averaged over each held-out subject's trials by class
# (LOSO fold models on their own held-out subject). Left: how much each channel's token reads every
# other channel's; right: how much the CLS token (the output) reads each channel, on the scalp. When
# early stopping kept the network at zero in every fold, its attention carries no decision and the
# readout is the LDA's (its pattern is notebook 05's riemann figure).

# %%
ds = run.dataset
inputs = stages.fusion_stage_inputs(run, cfg)  # what stage 04 read (its inputs.npz)
train_rows = np.flatnonzero(~ds.is_test)
att = np.zeros((len(train_rows), len(ds.ch_names) + 1, len(ds.ch_names) + 1))
for k, s in enumerate(np.unique(tr.subject)):
    rows = np.flatnonzero(tr.subject == s)
    model = load_channel_fusion(run.artifacts / "fusion" / f"fold{k}.pt")
    att[rows] = channel_attention(model.net, inputs, train_rows[rows])
by_class = {c: att[tr.y == c].mean(axis=0) for c in (0, 1)}
counts = f"{len(tr.subjects)} subjects, {len(tr)} trials"
fig = plot_channel_matrix({"neutral": by_class[0][1:, 1:], "emotional": by_class[1][1:, 1:],
                           "emotional - neutral": by_class[1][1:, 1:] - by_class[0][1:, 1:]}, tr.ch_names,
                          unit="attention weight", title=f"cross-channel attention, channel to channel ({counts})",
                          save_dir=FIGURES, name="04_fusion_channel_attention")
fig = plot_topomaps({"CLS reads, neutral": by_class[0][0, 1:], "CLS reads, emotional": by_class[1][0, 1:],
                     "emotional - neutral": by_class[1][0, 1:] - by_class[0][0, 1:]}, tr.ch_names,
                    unit="attention weight", title=f"what the output token reads ({counts})", save_dir=FIGURES,
                    name="04_fusion_cls_attention")

# %% [markdown]
# ## The reference fusion's expert weights, on the scalp
# The fusion LDA's weights on the z-scored expert logits (mean over the LOSO folds) and their
# activation pattern (Haufe et al., NeuroImage 2014): the covariance of each expert's logit with the
# fused output. Read *where the evidence comes from* on the pattern, not on the weights (weights also
# cancel noise).

# %%
coef = reference["coef"]  # (n_folds, n_chans)
pattern = fusion_pattern(run.artifacts / "experts" / "predictions.npz", coef)
fig = plot_topomaps({f"LDA weights (mean of {len(coef)} folds)": coef.mean(0),
                     "pattern (Haufe et al. 2014)": pattern}, tr.ch_names, unit="a.u.",
                    title=f"reference fusion of the 16 channel experts ({counts})",
                    save_dir=FIGURES, name="04_fusion_weights")

# %%
fig = plot_auc_timecourse({k: np.array(v["curve"]) for k, v in scores.items()}, tr.times,
                          window={k: tuple(v["window"]) for k, v in scores.items()},
                          title="fusions vs the experts' mean: LOSO AUC per sample (mean over subjects)",
                          save_dir=FIGURES, name="04_fusion_auc_timecourse")

# %%
display(Markdown(notebook_findings.fusion_findings(scores, tr.times, moved=moved, n_folds=len(fused["best_epoch"]))))
