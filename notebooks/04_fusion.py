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
# # 04 · Spatiotemporal fusion of the experts
#
# The 16 experts each see one channel. The fusion model reads their logit time courses
# `(n_trials, 16, T)` and learns a spatial mixing of the channels followed by a temporal
# convolution and a trial-level term (`kit.models.SpatioTemporalFusion`, EEGNet-style
# spatial-then-temporal factorisation). For fold k it reads fold k's expert bank, which never
# saw subject k, and trains on the other training subjects only.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full"
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import numpy as np

from kit import pipeline
from kit.paths import output_root
from kit.cv import loso_score
from kit.plots import plot_auc_timecourse

run = pipeline.open_run(DATA, PROFILE)
cfg = pipeline.stage_config("fusion", PROFILE)
print(cfg)

# %%
preds = pipeline.run_fusion_stage(run, cfg, force=FORCE)
tr = run.train
fusion = loso_score(preds["oof"], tr.y, tr.subject)
experts = loso_score(pipeline.load_components(run, ("experts",))["experts"]["oof"], tr.y, tr.subject)
for name, s in (("experts (mean)", experts), ("fusion", fusion)):
    print(f"{name:15s} LOSO score {s['loso_score']:.4f}  window {s['window']}  mean AUC {s['mean_auc']:.4f}")

# %%
fig = plot_auc_timecourse({"experts (mean)": np.array(experts["curve"]), "fusion": np.array(fusion["curve"])},
                          tr.times, window={"experts (mean)": tuple(experts["window"]), "fusion": tuple(fusion["window"])},
                          save_dir=output_root() / "reports" / "figures", name="04_fusion_auc_timecourse")
