"""Blending, post-processing and the nested choice of the ensemble."""

import numpy as np
import pytest

from kit.ensemble import EnsembleConfig, apply_ensemble, fit_ensemble, postprocess, standardize, weight_grid
from kit.errors import KitError
from kit.metric import per_sample_auc


def _data(seed=0, n_sub=5, n=60):
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(n_sub), n)
    y = np.tile([0, 1], n_sub * n // 2)
    bump = np.exp(-((np.arange(200) - 100) / 25.0) ** 2)
    good = 1 / (1 + np.exp(-(rng.standard_normal((len(y), 200)) + 0.8 * y[:, None] * bump)))
    noise = 1 / (1 + np.exp(-rng.standard_normal((len(y), 200))))
    return {"good": good, "noise": noise}, y, subject


def test_standardize_keeps_each_subjects_auc():
    preds, y, subject = _data()
    z = standardize(preds["good"], subject)
    for s in np.unique(subject):
        m = subject == s
        np.testing.assert_allclose(per_sample_auc(z[m], y[m]), per_sample_auc(preds["good"][m], y[m]))
        assert abs(z[m].mean()) < 1e-9 and z[m].std() == pytest.approx(1.0)


def test_postprocess_values():
    z = np.array([[0.0, 3.0, 0.0, 1.0]])
    assert postprocess(z, "broadcast").tolist() == [[1.0, 1.0, 1.0, 1.0]]
    assert postprocess(z, "blend", 0.5).tolist() == [[0.5, 2.0, 0.5, 1.0]]
    assert postprocess(z, "smooth", 3).tolist() == [[1.0, 1.0, 4 / 3, 2 / 3]]
    assert postprocess(z, "window", (1, 3)).tolist() == [[1.5, 1.5, 1.5, 1.5]]
    with pytest.raises(KitError, match="outside"):
        postprocess(z, "window", (2, 9))
    with pytest.raises(KitError, match="unknown post-processing"):
        postprocess(z, "median")


def test_weight_grid_is_the_simplex():
    grid = weight_grid(["a", "b", "c", "d"], 0.25)
    assert len(grid) == 35  # C(4 + 3, 3)
    assert all(abs(sum(w.values()) - 1) < 1e-12 for w in grid)


def test_blend_prefers_the_informative_component():
    preds, y, subject = _data()
    chosen, nested, cands = fit_ensemble(preds, y, subject, EnsembleConfig(top_k=3))
    assert len(chosen) == 3 and chosen[0] is cands[0]
    assert chosen[0].weights["good"] >= 0.75
    assert cands[0].score >= cands[-1].score
    test = apply_ensemble(chosen, preds, subject)
    # averaging k candidates = the mean of their post-processed standardized blends
    from kit.ensemble import blend, postprocess
    z = {k: standardize(v, subject) for k, v in preds.items()}
    ref = np.mean([postprocess(blend(z, c.weights), *c.post) for c in chosen], axis=0)
    np.testing.assert_allclose(test, 1 / (1 + np.exp(-ref)), rtol=1e-5)
    assert test.shape == (len(y), 200) and ((test >= 0) & (test <= 1)).all()


def test_nested_choice_never_reads_the_held_out_labels():
    preds, y, subject = _data(1)
    _, nested, _ = fit_ensemble(preds, y, subject)
    y2 = y.copy()
    m = subject == 2
    y2[m] = 1 - y2[m]  # flip the held-out subject's labels
    _, nested2, _ = fit_ensemble(preds, y2, subject)
    np.testing.assert_array_equal(nested[m], nested2[m])


def test_components_must_align():
    with pytest.raises(KitError, match="different shapes"):
        fit_ensemble({"a": np.zeros((4, 200)), "b": np.zeros((5, 200))}, np.array([0, 1, 0, 1]),
                     np.zeros(4, int), EnsembleConfig())
