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
# # 03 · Channel experts meta-trained with first-order MAML
#
# Sixteen experts, one per channel, each with the MAE encoder's architecture and initialised
# from its weights, plus a per-sample logit head (19,489 parameters per expert at full size).
# Subjects differ a lot, so the experts are meta-trained for *fast adaptation across
# subjects* (Finn et al., ICML 2017, first-order variant):
#
# * a **task** is one training subject; its trials are split into a class-balanced
#   **support** set and a disjoint **query** set;
# * **inner loop** (`kit.maml.fast_adapt`): 3 SGD steps on the support loss;
# * **outer loop**: the query loss of the adapted weights, averaged over a meta-batch of
#   subjects, updates the shared initialisation (first-order: the inner gradients are not
#   differentiated through).
#
# Everything runs **leave-one-subject-out**: fold k never sees subject k's trials during
# meta-training, and subject k (like the test subjects) is predicted by the meta-learned
# initialisation without any of its labels. Out-of-fold and test predictions
# `(n_trials, n_chans, 200)` go to `artifacts/<data>/experts/predictions.npz`, beside
# `fold{k}_seed{s}.pt`.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full"
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import matplotlib.pyplot as plt
import numpy as np

from kit import pipeline
from kit.paths import output_root
from kit.plots import save_figure
from kit.cv import loso_score
from kit.plots import plot_auc_timecourse

run = pipeline.open_run(DATA, PROFILE)
cfg = pipeline.stage_config("maml", PROFILE)
print(cfg)
print(run.folds.groupby("fold").subject.first().to_dict())

# %%
preds = pipeline.run_experts_stage(run, cfg, force=FORCE)
oof = preds["oof"]  # (n_train, n_chans, n_times)
print("out-of-fold", oof.shape, "test", preds["test"].shape)

# %% [markdown]
# ## Which channels decode?
# LOSO score (window metric) of each expert alone, and of the experts averaged.

# %%
tr = run.train
per_channel = [loso_score(oof[:, c], tr.y, tr.subject) for c in range(oof.shape[1])]
mean_score = loso_score(pipeline.experts_mean(oof), tr.y, tr.subject)
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(tr.ch_names, [s["mean_auc"] for s in per_channel], color="tab:blue")
ax.axhline(0.5, color="k", lw=0.8)
ax.set(ylabel="mean LOSO AUC over samples", title="single-expert decoding")
ax.set_ylim(0.45, max(0.56, max(s["mean_auc"] for s in per_channel) + 0.01))
fig.tight_layout()
FIGURES = output_root() / "reports" / "figures"
save_figure(fig, FIGURES, "03_expert_auc_by_channel")
print(f"experts (mean): LOSO score {mean_score['loso_score']:.4f}, window {mean_score['window']}")

# %%
fig = plot_auc_timecourse({"experts (mean)": np.array(mean_score["curve"])}, tr.times,
                          window=tuple(mean_score["window"]), save_dir=FIGURES,
                          name="03_experts_auc_timecourse")
