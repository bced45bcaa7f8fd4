"""Cross-fitted inner predictions: the ensemble's choice for subject k never depends on k's labels."""

import numpy as np
import pytest
from test_baselines import synthetic

from kit.core.errors import KitError
from kit.data.layout import SFREQ
from kit.eval.crossfit import cross_fit_predict, crossfit_plan
from kit.methods.registry import cross_fit_baseline
from kit.pipeline.ensemble import RULES, EnsembleConfig, fit_ensemble


def test_plan_sizes_and_groups():
    subject = np.repeat(np.arange(2, 16), 3)  # 14 subjects, as in the competition
    group, fits = crossfit_plan(subject)
    assert group.max() + 1 == 4 and len(fits) == 4 + 6
    # round-robin over the sorted ids: subjects 2, 6, 10, 14 in group 0
    assert sorted(set(subject[group == 0])) == [2, 6, 10, 14]
    assert [f.name for f in fits][:5] == ["g0", "g1", "g2", "g3", "g0g1"]
    assert [f.train.size // 3 for f in fits] == [10, 10, 11, 11, 6, 7, 7, 7, 7, 8]


def test_every_inner_row_comes_from_a_model_blind_to_that_group():
    subject = np.repeat(np.arange(9), 4)
    X = subject.astype(float)[:, None]
    seen = []

    def fit_predict(X_tr, y_tr, s_tr, eval_sets):
        seen.append(set(s_tr.tolist()))
        (Xe, se), = eval_sets
        return [np.full((len(Xe), 2), len(seen), float)]  # the model's number

    inner, group = cross_fit_predict(fit_predict, X, np.zeros(len(X)), subject)
    assert inner.shape == (4, len(X), 2) and not np.isnan(inner).any()
    for g in range(4):
        for row in range(len(X)):
            trained_on = seen[int(inner[g, row, 0]) - 1]
            assert not trained_on & set(subject[group == g].tolist())  # blind to every subject of group g
            assert subject[row] not in trained_on


def test_plan_needs_four_subjects():
    with pytest.raises(KitError, match="at least 4 training subjects, got 3"):
        crossfit_plan(np.repeat([1, 2, 3], 5))
    group, fits = crossfit_plan(np.repeat([1, 2, 3, 4], 5))
    assert all(np.unique(np.repeat([1, 2, 3, 4], 5)[f.train]).size >= 2 for f in fits)


def test_inner_table_ignores_its_groups_labels():
    X, y, s = synthetic(effect=1.0, seed=1)
    inner, group = cross_fit_baseline("bandpower", X, y, s, SFREQ)
    g = int(group[0])
    y2 = y.copy()
    y2[group == g] = 1 - y2[group == g]  # flip every label of group g
    inner2, _ = cross_fit_baseline("bandpower", X, y2, s, SFREQ)
    np.testing.assert_array_equal(inner2[g], inner[g])
    assert not np.array_equal(inner2[(g + 1) % 4], inner[(g + 1) % 4])  # the others did read them


@pytest.mark.parametrize("rule", RULES)
def test_crossfit_ensemble_prediction_ignores_the_held_out_labels(rule):
    """With inner tables fixed, k's nested prediction is a function of other subjects' labels only (every rule)."""
    rng = np.random.default_rng(0)
    subject = np.repeat(np.arange(8), 40)
    y = np.tile([0, 1], 160)
    oof = {k: rng.random((320, 20)) for k in ("a", "b")}
    group, _ = crossfit_plan(subject)
    inner = {k: rng.random((group.max() + 1, 320, 20)) for k in ("a", "b")}
    cfg = EnsembleConfig(rule=rule, n_boot=200, weight_step=0.5, top_k=2,
                         post=(("none", 0.0), ("broadcast", 0.0), ("window", (5, 15)), ("peak", 6)))
    nested = fit_ensemble(oof, y, subject, cfg, inner=inner, group=group).nested
    y2 = y.copy()
    y2[subject == 3] = 1 - y2[subject == 3]
    nested2 = fit_ensemble(oof, y2, subject, cfg, inner=inner, group=group).nested
    np.testing.assert_array_equal(nested2[subject == 3], nested[subject == 3])
    with pytest.raises(KitError, match="cross-fitted predictions missing"):
        fit_ensemble(oof, y, subject, cfg, inner={"a": inner["a"]}, group=group)
