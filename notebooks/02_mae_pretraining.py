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
# # 02 · Masked-autoencoder pretraining
#
# Single trials of sleep EEG are mostly noise, and labels are few (about 700 trials per
# subject). The 3rd-place solution first learns what a channel's feature sequence looks
# like, **without labels**, from every trial of every subject, training and test alike:
#
# * input per channel and sample (`kit.signal.sequences.deep_features`, table below): log band power
#   in the competition's 5 bands and the merged 8-30 Hz band, plus the low-passed (< 4 Hz)
#   waveform, where cue-evoked K-complexes and slow oscillations show; each z-scored per
#   subject (no labels);
# * a linear embedding + positional embedding (initialised sinusoidal, then learned), 40 % of
#   the samples replaced by a mask token (the encoder sees context on both sides), a 3-layer
#   Transformer encoder (d_model 16, 4 heads, feed-forward 128), a linear head reconstructs
#   the masked samples;
# * loss: mean squared error on the masked samples only (He et al., CVPR 2022).
#
# The encoder is what the 16 channel experts of notebook 03 read. The weights, the config
# and the loss history are written to `artifacts/<data>/mae/mae.pt`. The cell below names this
# run's data; the last cell says whether the encoder learned more than the features' smoothness.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" (minutes on a CPU) or "full" (the 3rd-place sizes; GPU advised)
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from kit.deep.mae import load_mae, nearest_visible_error, reconstruction_error
from kit.deep.nets import count_parameters
from kit.pipeline import stages
from kit.pipeline.profiles import stage_config
from kit.report import findings, notebook_findings
from kit.report.common import legend_outside, method_color
from kit.report.plots import save_figure
from kit.signal.sequences import deep_feature_names, describe_deep_features
from kit.store.artifacts import load_checkpoint
from kit.store.paths import output_root

run = stages.open_run(DATA, PROFILE)
cfg = stage_config("mae", PROFILE)
FIGURES = output_root() / "reports" / "figures"
display(Markdown(findings.intro_for(run)))
print(f"data: {run.data_root}  ->  artifacts: {run.artifacts}")
pd.DataFrame(findings.config_rows(cfg)).set_index("setting")

# %% [markdown]
# ## The input features
# One sequence per trial and channel: `(n_trials, n_chans, n_times, n_features)`.

# %%
F = run.features
print(f"features: {F.shape[0]} trials x {F.shape[1]} channels x {F.shape[2]} samples x {F.shape[3]} features "
      f"({F.nbytes / 2**20:.0f} MiB); {run.dataset.is_test.sum()} of {len(F)} trials from test subjects (used "
      "without labels)")
pd.DataFrame(describe_deep_features())

# %% [markdown]
# ## Pretraining
# Skipped when `mae.pt` exists for this config and data; an interrupted run resumes from
# `last.pt`. The progress bar shows the masked-sample error of the model (`mse`) beside that
# of copying the nearest visible sample (`nearest`) on the same masks; a saved notebook keeps the
# bar's final state only.

# %%
run.verbose = FORCE or not (run.artifacts / "mae" / "stage.json").is_file()  # a bar when it trains, no log if reused
mae_path = stages.run_mae_stage(run, cfg, force=FORCE)
model, cfg = load_mae(mae_path)
print(f"{mae_path.name} in {mae_path.parent}: {count_parameters(model):,} parameters, sequence length "
      f"{cfg.seq_len} steps of {cfg.pool / run.dataset.sfreq * 1000:.0f} ms")

# %% [markdown]
# ## Did it learn anything?
# A masked sample can be guessed without any training by repeating its nearest visible
# neighbour (the features are smooth in time). The encoder has learned something beyond
# smoothness only if its error is clearly below that reference.

# %%
history = load_checkpoint(mae_path)["history"]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], "o-", label="MAE")
ax.plot([h["epoch"] for h in history], [h["reference"] for h in history], "s--", color="grey",
        label="copy nearest visible sample")
ax.set(xlabel="epoch", ylabel="masked-sample MSE (z-score²)", title="MAE pretraining loss (training masks)")
legend_outside(ax)
save_figure(fig, FIGURES, "02_mae_loss")

rng = np.random.default_rng(0)
held = F[np.sort(rng.choice(len(F), size=min(512, len(F)), replace=False))]
mse, ref = reconstruction_error(model, held, cfg, n_repeats=3), nearest_visible_error(held, cfg, n_repeats=3)
pd.DataFrame({"masked-sample MSE (z-score², fresh masks)": {"MAE": round(mse, 4), "copy nearest visible sample":
                                                            round(ref, 4), "predict 0": 1.0}})

# %%
import torch

from kit.deep.mae import as_sequences

seqs = as_sequences(held[:4], cfg.pool)
with torch.no_grad():
    _, pred, mask = model(seqs, cfg.mask_ratio, generator=torch.Generator().manual_seed(1))
names = deep_feature_names()
show = [names.index("theta"), names.index("slow")]
fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
t = np.arange(seqs.shape[1]) * cfg.pool / run.dataset.sfreq
for ax, f in zip(axes, show):
    ax.plot(t, seqs[0, :, f], "k-", lw=1, label="input")
    ax.plot(t[mask[0]], pred[0, mask[0], f], "o", color=method_color("experts"), ms=3,
            label="reconstruction (masked samples)")
    ax.set(title=names[f], xlabel="time after cue (s)")
axes[0].set_ylabel("z-score")
legend_outside(axes[1])
fig.tight_layout()
_ = save_figure(fig, FIGURES, "02_mae_reconstruction")

# %%
display(Markdown(notebook_findings.mae_findings(mse, ref, n_params=count_parameters(model), n_trials=len(F),
                                       epochs=len(history))))
