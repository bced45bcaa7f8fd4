"""Every profile and its sizes: the one table of how long each stage trains, and the stage configs it gives.

``smoke`` (seconds, for tests and CI), ``quick`` (minutes on 2 CPU cores at the demo size: the default),
``full`` (the 3rd-place sizes, meant for a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.core.errors import KitError
from kit.deep.channel_fusion import ChannelFusionConfig
from kit.deep.experts import ExpertsConfig
from kit.deep.fusion import FusionConfig
from kit.deep.mae import MAEConfig
from kit.deep.thirdplace import ThirdPlaceConfig
from kit.methods.eegnet import EEGNetConfig
from kit.pipeline.ensemble import EnsembleConfig

PROFILES: dict[str, dict[str, dict]] = {
    # quick: minutes on 2 CPU cores at the demo size; sequences pooled 8x (25 model samples)
    "quick": {
        "features": dict(),
        "mae": dict(pool=8, dropout=0.0, epochs=10, sequences_per_epoch=8192, batch_size=256, lr=3e-3),
        "experts": dict(),
        "fusion": dict(),
        "fusion_lda": dict(kind="lda"),
        "ensemble": dict(),
        "eegnet": dict(epochs=8),
        # the bench row "thirdplace-quick": the published architecture, features and 200 samples, fewer steps
        "thirdplace": dict(mae_epochs=2, mae_sequences=8192, outer_steps=40, meta_batch=2, n_support=16, n_query=16),
    },
    # smoke: seconds; for tests and CI only (every stage runs, nothing is learned)
    "smoke": {
        "features": dict(),
        "mae": dict(pool=8, epochs=1, sequences_per_epoch=1024, batch_size=256),
        "experts": dict(max_steps=4, eval_every=2, n_support=8, n_query=8, meta_batch=2),
        "fusion": dict(epochs=1, d_model=8, d_ff=16),
        "fusion_lda": dict(kind="lda"),
        "thirdplace": dict(d_ff=16, n_layers=1, mae_epochs=1, mae_sequences=256, outer_steps=2, meta_batch=1,
                           n_support=4, n_query=4),
        "ensemble": dict(weight_step=0.5, post=(("none", 0.0), ("broadcast", 0.0))),
        "eegnet": dict(epochs=1),
    },
    # full: the 3rd-place sizes on the full 200 samples, 3 seeds; meant for a GPU (Kaggle kernel)
    "full": {"features": dict(), "mae": dict(), "experts": dict(n_seeds=3), "fusion": dict(epochs=60, n_layers=2),
             "fusion_lda": dict(kind="lda"), "thirdplace": dict(), "ensemble": dict(), "eegnet": dict(epochs=40)},
    # thirdplace: the full profile, and the 3rd place's design at its published sizes (GPU-sized)
    "thirdplace": {"features": dict(), "mae": dict(), "experts": dict(n_seeds=3), "fusion": dict(epochs=60, n_layers=2),
                   "fusion_lda": dict(kind="lda"), "thirdplace": dict(), "ensemble": dict(), "eegnet": dict(epochs=40)},
}
"""Profile -> stage -> config overrides (stages: features, mae, experts, fusion, fusion_lda, ensemble and the
eegnet anchor)."""


def check_profile(profile: str) -> str:
    """``profile`` itself; KitError unless it is a key of :data:`PROFILES`."""
    if profile not in PROFILES:
        raise KitError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    return profile


def stage_config(stage: str, profile: str):
    """The config dataclass of ``stage`` ("features", "mae", "experts", "fusion", "fusion_lda", "ensemble") for ``profile``.

    Raises
    ------
    KitError
        Unknown stage or profile.
    """
    check_profile(profile)
    classes = {"features": FeatureConfig, "mae": MAEConfig, "experts": ExpertsConfig, "fusion": ChannelFusionConfig,
               "fusion_lda": FusionConfig, "thirdplace": ThirdPlaceConfig, "ensemble": EnsembleConfig}
    if stage not in classes:
        raise KitError(f"unknown stage {stage!r}; choose from {sorted(classes)}")
    return classes[stage](**PROFILES[profile][stage])


@dataclass
class FeatureConfig:
    """Inputs of the deep stages (02-04)."""

    align: bool = False  # Euclidean alignment per subject before the band powers (He & Wu 2020)


def baseline_params(name: str, profile: str) -> dict:
    """Config overrides of a baseline for a profile (only EEGNet's epochs depend on it)."""
    if name != "eegnet":
        return {}
    default = EEGNetConfig()
    return {k: v for k, v in PROFILES[profile]["eegnet"].items() if getattr(default, k) != v}
