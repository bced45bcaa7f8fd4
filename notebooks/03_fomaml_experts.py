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
# # 03 · Channel experts on the MAE encoder, trained across subjects
#
# Sixteen experts, one per channel. Each reads, at every model sample, the frozen MAE
# encoder's token (notebook 02) beside the features it encodes, and pools them over time by
# **attention** (`kit.deep.nets.AttentionPoolHead`, Ilse et al., ICML 2018): a score per sample
# (plus a learned time prior shared by the experts) becomes a softmax weight over the 1-s
# trial, and the expert's trial logit is the weighted sum of per-sample logits. The loss is
# taken on that **one logit per trial**, the level at which the metric scores a subject.
#
# How the experts learn across subjects is one flag, `ExpertsConfig.meta` (`kit.deep.maml`):
#
# * `"none"` (default): plain training on class-balanced trials of a few subjects per step;
# * `"mldg"`: first-order MLDG (Li et al., AAAI 2018): the **inner loop** (`fast_adapt`)
#   adapts on **support** subjects, the outer loss is taken on a *different* (**query**)
#   subject: meta-training for zero-shot transfer, which is what a held-out subject without
#   labels needs;
# * `"fomaml"`: the 3rd place's first-order MAML, support and query from the same subject.
#
# `python -m kit bench` compares the three (README, lever table). Everything runs
# **leave-one-subject-out**; each model's number of steps is chosen by early stopping on
# held-out *training* subjects (never subject k). The frozen encoder makes every fold,
# cross-fit model and seed one batched computation. Outputs at model resolution (trial
# logits, per-sample logits, attention) go to `artifacts/<data>/experts/predictions.npz`,
# beside `fold{k}_seed{s}.pt` (each loadable alone with `kit.deep.experts.load_bank`).

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full"
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import matplotlib.pyplot as plt
import numpy as np

from kit.pipeline import stages
from kit.pipeline.profiles import stage_config
from kit.eval.cv import loso_score
from kit.deep.experts import subject_auc
from kit.store.paths import output_root
from kit.report.plots import plot_attention_by_class, plot_auc_timecourse, save_figure

run = stages.open_run(DATA, PROFILE)
cfg = stage_config("experts", PROFILE)
FIGURES = output_root() / "reports" / "figures"
print(cfg)
print(run.folds.groupby("fold").subject.first().to_dict())

# %%
preds = stages.run_experts_stage(run, cfg, force=FORCE)
print({k: v.shape for k, v in preds.items() if k.startswith(("oof", "test"))})
print("outer steps chosen by early stopping, per fold:", preds["steps"].ravel().tolist())

# %% [markdown]
# ## Which channels decode?
# Mean per-subject AUC of each expert's out-of-fold trial logit, and the LOSO score of the
# experts' mean trial logit (the `experts` component of notebook 05).

# %%
tr = run.train
per_channel = [subject_auc(preds["oof_logits"][:, c], tr.y, tr.subject) for c in range(len(tr.ch_names))]
mean_score = loso_score(preds["oof"], tr.y, tr.subject)
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(tr.ch_names, per_channel, color="tab:blue")
ax.axhline(0.5, color="k", lw=0.8)
ax.set(ylabel="mean per-subject AUC", title=f"single-expert decoding (out-of-fold, {len(np.unique(tr.subject))} subjects)")
ax.set_ylim(0.45, max(0.56, max(per_channel) + 0.01))
fig.tight_layout()
save_figure(fig, FIGURES, "03_expert_auc_by_channel")
print(f"experts (mean): LOSO score {mean_score['loso_score']:.4f}, window {mean_score['window']}")

# %% [markdown]
# ## Where in the trial do the experts look?
# The attention weights are a curve over the trial per expert and trial (they sum to 1 over
# the pooled time steps); averaged over the experts, by class, mean ± SEM over subjects. A flat
# curve (the dotted line) would be plain averaging; a peak says which part of the 1 s after
# the cue the experts rely on; a class difference, that they look elsewhere after emotional cues.

# %%
fig = plot_attention_by_class(preds["oof_attention"], tr.y, tr.subject, tr.times, save_dir=FIGURES,
                              name="03_expert_attention")

# %%
fig = plot_auc_timecourse({"experts (mean)": np.array(mean_score["curve"])}, tr.times,
                          window=tuple(mean_score["window"]), save_dir=FIGURES,
                          name="03_experts_auc_timecourse")
