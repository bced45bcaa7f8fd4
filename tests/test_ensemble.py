"""Blending, post-processing and the nested choice of the ensemble."""

import numpy as np
import pytest
from scipy.ndimage import uniform_filter1d

from kit.core.errors import KitError
from kit.eval.cv import loso_score
from kit.eval.metric import auc_curves, per_sample_auc
from kit.eval.stats import bootstrap_difference
from kit.pipeline.blends import Table, blend, postprocess, standardize, weight_grid
from kit.pipeline.ensemble import RULES, EnsembleConfig, apply_ensemble, fit_ensemble, stack_weights


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


def test_subjects_scored_in_threads_give_the_serial_fit():
    preds, y, subject = _data()
    one = fit_ensemble(preds, y, subject, EnsembleConfig(rule="grid", top_k=3, threads=1))
    two = fit_ensemble(preds, y, subject, EnsembleConfig(rule="grid", top_k=3, threads=2))
    assert np.array_equal(one.nested, two.nested)
    assert [c.label() for c in one.chosen] == [c.label() for c in two.chosen]
    assert [c.score for c in one.chosen] == [c.score for c in two.chosen]


def test_grid_rule_prefers_the_informative_component_and_averages_its_top_k():
    preds, y, subject = _data()
    fit = fit_ensemble(preds, y, subject, EnsembleConfig(rule="grid", top_k=3))
    assert len(fit.chosen) == 3 and fit.rule == "grid"
    assert fit.chosen[0].weights["good"] >= 0.75
    assert fit.chosen[0].score >= fit.chosen[-1].score
    test = apply_ensemble(fit.chosen, preds, subject)
    # averaging k candidates = the mean of their post-processed standardized blends
    z = {k: standardize(v, subject) for k, v in preds.items()}
    ref = np.mean([postprocess(blend(z, c.weights), *c.post) for c in fit.chosen], axis=0)
    np.testing.assert_allclose(test, 1 / (1 + np.exp(-ref)), rtol=1e-5)
    assert test.shape == (len(y), 200) and ((test >= 0) & (test <= 1)).all()


def test_table_curves_equal_the_metric_auc_curves_for_every_post_processing():
    preds, y, subject = _data(2)
    z = {k: standardize(v, subject) for k, v in preds.items()}
    table = Table(z, ["good", "noise"], y, subject)
    W = np.array([[0.3, 0.7], [1.0, 0.0]])
    for post in (("none", 0.0), ("smooth", 21.0), ("broadcast", 0.0), ("window", (80, 120))):
        A = table.curves(W, post)
        for w, a in zip(W, A):
            _, ref = auc_curves(postprocess(blend(z, dict(good=w[0], noise=w[1])), *post), y, subject)
            np.testing.assert_allclose(a, ref, atol=1e-12)
    # per-blend windows: each blend averaged over its own window
    A = table.window_curves(W, [(10, 30), (90, 110)])
    _, ref = auc_curves(postprocess(blend(z, dict(good=1.0, noise=0.0)), "window", (90, 110)), y, subject)
    np.testing.assert_allclose(A[1], ref, atol=1e-12)


def test_peak_window_is_where_the_pooled_auc_curve_is_highest():
    preds, y, subject = _data(3)  # the effect is a bump centred on sample 100
    z = {k: standardize(v, subject) for k, v in preds.items()}
    table = Table(z, ["good", "noise"], y, subject)
    (start, stop), = table.peak_windows(np.array([[1.0, 0.0]]), np.ones(5, bool), 40)
    assert stop - start == 40 and 70 <= start <= 90


def test_stack_weights_are_non_negative_and_follow_the_signal():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 500)
    X = np.stack([y + rng.standard_normal(1000), rng.standard_normal(1000), -y + rng.standard_normal(1000)], 1)
    w = stack_weights(X, y, l2=0.01)
    assert (w >= 0).all() and w[0] > 0.3 and w[2] == 0.0 and w[1] < 0.05  # the anti-informative one is clipped
    assert stack_weights(X, y, l2=100.0).sum() < w.sum()  # a stronger penalty shrinks the weights


def _tables(n_noise: int, effect: float, seed: int = 0, n_sub: int = 13, n: int = 80, T: int = 200):
    """Cross-fitted prediction tables: one informative component (flat over the trial) among smooth noise."""
    from kit.eval.crossfit import crossfit_plan
    rng = np.random.default_rng(seed)
    subject = np.repeat(np.arange(n_sub), n)
    y = np.tile([0, 1], n_sub * n // 2)
    group, _ = crossfit_plan(subject)
    n_groups = int(group.max()) + 1

    def informative():
        return np.repeat((effect * y + rng.standard_normal(len(y)))[:, None], T, axis=1)

    def noise():
        return uniform_filter1d(rng.standard_normal((len(y), T)), 40, axis=1) * 6

    makers = {"signal": informative, **{f"noise{i}": noise for i in range(n_noise)}}
    oof = {k: 1 / (1 + np.exp(-f())) for k, f in makers.items()}
    inner = {k: np.stack([1 / (1 + np.exp(-f())) for _ in range(n_groups)]) for k, f in makers.items()}
    return oof, inner, y, subject, group


def test_one_informative_component_among_noise_the_default_ensemble_matches_it():
    oof, inner, y, subject, group = _tables(n_noise=5, effect=0.35)
    comp = loso_score(oof["signal"], y, subject)["loso_score"]
    fit = fit_ensemble(oof, y, subject, EnsembleConfig(), inner=inner, group=group)
    ens = loso_score(fit.nested, y, subject)["loso_score"]
    assert 0.55 < comp < 0.65
    assert abs(ens - comp) <= 0.005, (ens, comp)
    assert fit.chosen[0].weights["signal"] >= 0.9  # the noise components get (almost) no weight
    assert all("signal" in r["blend"] for r in fit.per_subject)


@pytest.mark.parametrize("rule", RULES)
def test_all_components_noise_the_ensemble_stays_at_chance(rule):
    oof, inner, y, subject, group = _tables(n_noise=5, effect=0.0, seed=1)
    fit = fit_ensemble(oof, y, subject, EnsembleConfig(rule=rule, n_boot=500), inner=inner, group=group)
    assert loso_score(fit.nested, y, subject)["loso_score"] <= 0.53


def test_unknown_rule_is_refused():
    preds, y, subject = _data()
    with pytest.raises(KitError, match="unknown rule 'vote'"):
        fit_ensemble(preds, y, subject, EnsembleConfig(rule="vote"))


def test_components_must_align():
    with pytest.raises(KitError, match="different shapes"):
        fit_ensemble({"a": np.zeros((4, 200)), "b": np.zeros((5, 200))}, np.array([0, 1, 0, 1]),
                     np.zeros(4, int), EnsembleConfig())


def test_bootstrap_difference_is_paired_and_exact_on_all_subjects():
    rng = np.random.default_rng(0)
    A = 0.5 + 0.1 * rng.random((12, 200))
    d, lo, hi = bootstrap_difference(A, A)
    assert d == lo == hi == 0.0  # the same curves: every paired resample differs by exactly 0
    B = A - 0.02
    d, lo, hi = bootstrap_difference(A, B, n_boot=300)
    assert d == pytest.approx(0.02, abs=1e-9) and lo <= d <= hi
    with pytest.raises(KitError, match="shapes differ"):
        bootstrap_difference(A, A[:3])


def test_a_blend_survives_json_with_its_order_and_every_bit():
    import json

    from kit.pipeline.blends import Candidate
    from kit.pipeline.ensemble import candidate_from_json, candidate_to_json

    c = Candidate({"zeta": 0.1 + 0.2, "alpha": np.float64(1 / 3), "mid": 0.0}, ("window", (np.int64(40), 120)))
    d = json.loads(json.dumps(candidate_to_json(c), sort_keys=True))  # as kit.store.artifacts.write_json writes
    back = candidate_from_json(d)
    assert list(back.weights) == ["zeta", "alpha", "mid"] and back.weights == {k: float(v) for k, v in c.weights.items()}
    assert back.post == ("window", (40, 120))
    with pytest.raises(KitError, match="not a stored blend"):
        candidate_from_json({"weights": []})
