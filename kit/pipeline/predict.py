"""``kit predict``: a finished run's saved models applied to the test files of any folder, without retraining.

Reads, from ``artifacts/{tag}/`` of a finished ``python -m kit run``: the ensemble's blend
(``ensemble/blend.json``), every anchor's LOSO fold models (``{anchor}/models.pkl``), the MAE (``mae/mae.pt``),
the experts' fold checkpoints (``experts/fold{k}_seed{s}.pt``) and the fusion's (``fusion/fold{k}.pt``).
Each component's test prediction is recomputed exactly as its stage computed it (the same functions, in the
same order), so on the run's own data folder the submission is the run's, bit for bit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from kit.core.errors import KitError
from kit.core.runtime import set_threads
from kit.data.dataset import Dataset, load_dataset
from kit.deep.channel_fusion import ChannelFusionConfig, fusion_inputs, predict_channel_fusion_test
from kit.deep.experts_loso import predict_experts_test
from kit.deep.fusion import predict_fusion_test
from kit.methods.registry import ANCHORS, predict_baseline
from kit.pipeline.ensemble import apply_ensemble, candidate_from_json
from kit.pipeline.run import data_tag
from kit.pipeline.submission import expected_ids, validate_submission, write_submission
from kit.signal.features import euclidean_alignment
from kit.signal.sequences import deep_features
from kit.store.artifacts import load_checkpoint, load_models
from kit.store.paths import output_root


def read_blend(artifacts: Path) -> dict:
    """``ensemble/blend.json`` of a finished run, its candidates rebuilt.

    Raises
    ------
    KitError
        No finished ensemble stage, or a damaged file.
    """
    path = artifacts / "ensemble" / "blend.json"
    if not path.is_file():
        raise KitError(f"{path}: not found; finish a run first (python -m kit run --data <its data folder>)")
    try:
        blend = json.loads(path.read_text())
        blend["candidates"] = [candidate_from_json(c) for c in blend["candidates"]]
        blend["components"], blend["ch_names"] = list(blend["components"]), list(blend["ch_names"])
    except (ValueError, KeyError, TypeError) as exc:
        raise KitError(f"{path}: not a blend written by the kit ({exc})") from exc
    return blend


def _channels_as_trained(test: Dataset, ch_names: list[str], artifacts: Path) -> np.ndarray:
    """``test.X`` with its channels in the training order; KitError when the channel sets differ."""
    if list(test.ch_names) == ch_names:
        return test.X
    if set(test.ch_names) != set(ch_names):
        raise KitError(f"{test.root}: channels {' '.join(test.ch_names)}; the models in {artifacts} were trained "
                       f"on {' '.join(ch_names)}")
    return test.X[:, [test.ch_names.index(c) for c in ch_names]]


def component_predictions(artifacts: Path, names: list[str], X: np.ndarray, subject: np.ndarray,
                          sfreq: float) -> dict[str, np.ndarray]:
    """Each named component's test prediction from its saved models.

    Parameters
    ----------
    artifacts : Path
        ``artifacts/{tag}`` of the finished run.
    names : list of str
        Components (anchors, ``experts``, ``fusion``).
    X : ndarray, shape (n_test, n_chans, n_times), µV, channels in the training order
    subject : ndarray, shape (n_test,)
    sfreq : float

    Returns
    -------
    dict name -> ndarray, shape (n_test, n_times)

    Raises
    ------
    KitError
        A stage's files missing, or models for another number of channels or samples.
    """
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in ANCHORS:
            saved = load_models(artifacts / name / "models.pkl")
            if saved["n_times"] != X.shape[2] or len(saved["ch_names"]) != X.shape[1]:
                raise KitError(f"{artifacts / name / 'models.pkl'}: trained on {len(saved['ch_names'])} channels x "
                               f"{saved['n_times']} samples, the data has {X.shape[1]} x {X.shape[2]}")
            out[name] = predict_baseline(name, saved["models"], X, subject, saved["sfreq"],
                                         **saved["params"]).astype(np.float32)
    deep = [n for n in names if n in ("experts", "fusion", "fusion_lda")]
    if deep:
        stamp_path = artifacts / deep[0] / "stage.json"
        if not stamp_path.is_file():
            raise KitError(f"{stamp_path}: not found; the run has no finished {deep[0]} stage (notebooks 03-04)")
        align = bool(json.loads(stamp_path.read_text()).get("features", {}).get("align", False))
        feats = deep_features(euclidean_alignment(X, subject) if align else X, subject, sfreq)
    if "experts" in names or "fusion_lda" in names:
        e = predict_experts_test(feats, artifacts / "experts", artifacts / "mae" / "mae.pt")
        if "experts" in names:
            out["experts"] = e["test"]
        if "fusion_lda" in names:
            out["fusion_lda"] = predict_fusion_test(artifacts / "fusion_lda", e["test_logits"], e["test_course"],
                                                    subject, X.shape[2])
    if "fusion" in names:
        cfg = load_checkpoint(artifacts / "fusion" / "fold0.pt", ChannelFusionConfig)["config"]
        inputs = fusion_inputs(feats, X, subject, sfreq, artifacts / "mae" / "mae.pt", cfg)
        out["fusion"] = predict_channel_fusion_test(artifacts / "fusion", inputs, X.shape[2])
    unknown = [n for n in names if n not in out]
    if unknown:
        raise KitError(f"kit predict: cannot apply component(s) {unknown}")
    return out


def predict_folder(data: str | os.PathLike, artifacts: str | os.PathLike | None = None, *,
                   out: str | os.PathLike | None = None) -> Path:
    """Write the submission of a finished run's ensemble for the test files of ``data``, and validate it.

    Parameters
    ----------
    data : path
        A folder in the competition layout (only ``testing/`` is read).
    artifacts : path, optional
        ``artifacts/{tag}`` of the finished run; default that of ``data`` itself.
    out : path, optional
        Submission file; default ``submissions/{tag}_predict.csv``.

    Returns
    -------
    Path
        The validated submission.

    Raises
    ------
    KitError
        Missing or foreign artifacts, channels the models were not trained on; DataError from the data.
    """
    set_threads()
    test = load_dataset(data, splits=("test",))
    artifacts = Path(artifacts) if artifacts is not None else output_root() / "artifacts" / data_tag(test.root)
    blend = read_blend(artifacts)
    X = _channels_as_trained(test, blend["ch_names"], artifacts)
    if X.shape[2] != blend["n_times"] or abs(test.sfreq - blend["sfreq"]) > 1e-6:
        raise KitError(f"{test.root}: {X.shape[2]} samples at {test.sfreq:g} Hz; the models in {artifacts} were "
                       f"trained on {blend['n_times']} at {blend['sfreq']:g} Hz")
    needed = sorted({k for c in blend["candidates"] for k, w in c.weights.items() if w > 0},
                    key=blend["components"].index)
    preds = component_predictions(artifacts, needed, X, test.subject, test.sfreq)
    pred = apply_ensemble(blend["candidates"], preds, test.subject)
    out = Path(out) if out is not None else output_root() / "submissions" / f"{data_tag(test.root)}_predict.csv"
    write_submission(out, pred, test.subject, test.trial)
    validate_submission(out, expected_ids(test.subject, test.trial))
    return out
