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
# subject). The 3rd-place solution first learns what a channel's band-power sequence looks
# like, **without labels**, from every trial of every subject, training and test alike:
#
# * input per channel and sample: 5 z-scored log band powers (delta, theta, alpha, sigma,
#   beta; band-pass then Hilbert envelope, `kit.features.band_features`);
# * `Linear(5 → 16)` + learned positional embedding, 40 % of the samples replaced by a mask
#   token (the encoder sees context on both sides), a 3-layer Transformer encoder
#   (d_model 16, 4 heads, feed-forward 128), a linear head reconstructs the masked samples;
# * loss: mean squared error on the masked samples only (He et al., CVPR 2022).
#
# The encoder weights initialise the 16 channel experts of notebook 03. The weights, the
# config and the loss history are written to `artifacts/<data>/mae/mae.pt`.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" (minutes on a CPU) or "full" (the 3rd-place sizes; GPU advised)
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import matplotlib.pyplot as plt
import numpy as np

from kit import pipeline
from kit.paths import output_root
from kit.plots import save_figure
from kit.mae import load_mae, reconstruction_error
from kit.models import count_parameters

run = pipeline.open_run(DATA, PROFILE)
cfg = pipeline.stage_config("mae", PROFILE)
print(f"data: {run.data_root}  ->  artifacts: {run.artifacts}")
print(cfg)

# %% [markdown]
# ## Band-power sequences of every trial
# One sequence per trial and channel: `(n_trials, n_chans, n_times, n_bands)`.

# %%
F = run.features
print(f"features {F.shape} ({F.nbytes / 2**20:.0f} MiB), "
      f"{run.dataset.is_test.sum()} of {len(F)} trials from test subjects (used without labels)")

# %% [markdown]
# ## Pretraining
# Skipped when `mae.pt` exists for this config and data; an interrupted run resumes from
# `last.pt`.

# %%
mae_path = pipeline.run_mae_stage(run, cfg, force=FORCE)
model, cfg = load_mae(mae_path)
print(f"{mae_path}: {count_parameters(model):,} parameters, sequence length {cfg.seq_len}")

# %%
from kit.artifacts import load_checkpoint

history = load_checkpoint(mae_path)["history"]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([h["epoch"] for h in history], [h["loss"] for h in history], "o-")
ax.set(xlabel="epoch", ylabel="masked-sample MSE", title="MAE pretraining loss")
fig.tight_layout()
FIGURES = output_root() / "reports" / "figures"
save_figure(fig, FIGURES, "02_mae_loss")

# %% [markdown]
# ## Does the encoder use context?
# Masked-sample error of the trained model against two references on the same masks:
# predicting 0 (the z-scored mean) and repeating the nearest visible sample.

# %%
import torch

from kit.mae import as_sequences

rng = np.random.default_rng(0)
idx = rng.choice(len(F), size=min(256, len(F)), replace=False)
seqs = as_sequences(F[np.sort(idx)], cfg.pool)
gen = torch.Generator().manual_seed(1)
with torch.no_grad():
    loss, pred, mask = model(seqs, cfg.mask_ratio, generator=gen)
zero = float(((seqs ** 2).mean(-1)[mask]).mean())
print(f"masked MSE: model {loss.item():.4f} | predict-zero {zero:.4f}")

# %%
i = 0
fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
for ax, band in zip(axes, (1, 3)):
    t = np.arange(seqs.shape[1])
    ax.plot(t, seqs[i, :, band], "k-", lw=1, label="input")
    ax.plot(t[mask[i]], pred[i, mask[i], band], "ro", ms=3, label="reconstruction (masked)")
    ax.set(title=["delta", "theta", "alpha", "sigma", "beta"][band], xlabel="model sample")
axes[0].legend(fontsize=8)
fig.tight_layout()
save_figure(fig, FIGURES, "02_mae_reconstruction")
