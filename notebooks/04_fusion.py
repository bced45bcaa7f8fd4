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
# # 04 · Fusion of the experts
#
# The 16 experts each see one channel; fusion combines them. The experts over-fit the
# subjects they were trained on (training AUC well above held-out AUC), so a fusion fitted on
# their in-sample outputs would learn to trust over-fit channels. Here fusion is fitted on
# the experts' **cross-fitted** outputs only: outputs of expert models that never saw the
# trial's subject (stored by notebook 03; no expert is re-run). Two models:
#
# * `lda`: shrinkage LDA on the 16 trial logits, z-scored per subject: its coefficients are
#   the experts' weights;
# * `net`: the 3rd place's spatiotemporal network (`kit.deep.nets.SpatioTemporalFusion`) on the
#   experts' logit time courses `(16, T)`: spatial mixing, temporal convolution, trial term.
#
# With `kind="auto"` each held-out subject gets the model with the better inner score
# (mean per-subject AUC on the cross-fitted tables, that subject excluded).

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full"
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import numpy as np

from kit.pipeline import stages
from kit.pipeline.profiles import stage_config
from kit.eval.cv import loso_score
from kit.deep.fusion import FUSION_KINDS, fusion_pattern
from kit.store.paths import output_root
from kit.report.plots import plot_auc_timecourse, plot_topomaps

run = stages.open_run(DATA, PROFILE)
cfg = stage_config("fusion", PROFILE)
FIGURES = output_root() / "reports" / "figures"
print(cfg)

# %%
preds = stages.run_fusion_stage(run, cfg, force=FORCE)
tr = run.train
scores = {"experts (mean)": loso_score(stages.load_components(run, ("experts",))["experts"]["oof"], tr.y, tr.subject)}
scores.update({f"fusion {k}": loso_score(preds[f"oof_{k}"], tr.y, tr.subject) for k in FUSION_KINDS if f"oof_{k}" in preds})
scores["fusion (chosen)"] = loso_score(preds["oof"], tr.y, tr.subject)
for name, s in scores.items():
    print(f"{name:16s} LOSO score {s['loso_score']:.4f}  window {s['window']}  mean AUC {s['mean_auc']:.4f}")
kinds = np.array(FUSION_KINDS)[preds["chosen"]]
print("chosen per held-out subject:", dict(zip(np.unique(tr.subject).tolist(), kinds.tolist())))

# %% [markdown]
# ## The experts' weights, on the scalp
# Left, the fusion LDA's weights on the z-scored expert logits (mean over the LOSO folds);
# right, their activation pattern (Haufe et al., NeuroImage 2014): the covariance of each
# expert's logit with the fused output. Weights are a filter: two experts that say the same
# thing share (or split, with opposite signs) one weight, so read *where the evidence comes
# from* on the pattern, not on the weights.

# %%
coef = preds["coef"]  # (n_folds, n_chans)
pattern = fusion_pattern(run.artifacts / "experts" / "predictions.npz", coef)
fig = plot_topomaps({f"LDA weights (mean of {len(coef)} folds)": coef.mean(0),
                     "pattern (Haufe et al. 2014)": pattern}, tr.ch_names, unit="a.u.",
                    title=f"fusion of the 16 channel experts ({len(np.unique(tr.subject))} subjects, {len(tr)} trials)",
                    save_dir=FIGURES, name="04_fusion_weights")
print("weights:", dict(zip(tr.ch_names, coef.mean(0).round(3))))

# %%
fig = plot_auc_timecourse({k: np.array(v["curve"]) for k, v in scores.items()}, tr.times,
                          window={k: tuple(v["window"]) for k, v in scores.items()},
                          save_dir=FIGURES, name="04_fusion_auc_timecourse")
