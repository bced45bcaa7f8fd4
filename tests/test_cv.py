"""Tests for kit.eval.cv: LOSO folds, the stored fold table, LOSO scoring, cross_val_predict_loso."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from kit.core.errors import KitError
from kit.eval import cv

SUBJECT = np.array([5, 2, 5, 9, 2, 9, 9, 5])


def test_loso_folds_hold_out_sorted_subjects():
    folds = cv.loso_folds(SUBJECT)
    assert len(folds) == 3
    for k, sid in enumerate([2, 5, 9]):
        tr, va = folds[k]
        assert np.all(SUBJECT[va] == sid)
        assert sid not in SUBJECT[tr]
        assert sorted(np.concatenate([tr, va])) == list(range(8))
    with pytest.raises(KitError, match="two subjects"):
        cv.loso_folds(np.ones(4))


def test_inner_loso_folds_never_touch_excluded():
    folds = cv.inner_loso_folds(SUBJECT, exclude=5)
    assert len(folds) == 2
    for tr, va in folds:
        assert 5 not in SUBJECT[tr] and 5 not in SUBJECT[va]
        assert set(SUBJECT[tr]) | set(SUBJECT[va]) == {2, 9}
    assert [set(SUBJECT[va]) for _, va in folds] == [{2}, {9}]
    assert len(cv.inner_loso_folds(SUBJECT)) == 3
    with pytest.raises(KitError, match="two subjects"):
        cv.inner_loso_folds(SUBJECT, exclude=[2, 9])


def test_fold_table_and_folds_from_table():
    table = cv.fold_table(SUBJECT)
    assert table.to_dict("list") == {"subject": [2, 5, 9], "fold": [0, 1, 2]}
    for (tr, va), (tr2, va2) in zip(cv.loso_folds(SUBJECT), cv.folds_from_table(table, SUBJECT)):
        np.testing.assert_array_equal(tr, tr2)
        np.testing.assert_array_equal(va, va2)
    with pytest.raises(KitError, match=r"\[11\]"):
        cv.folds_from_table(table, np.array([2, 11]))


def test_load_or_create_folds_computes_once_and_checks_subjects(tmp_path):
    path = tmp_path / "artifacts" / "folds.csv"
    t1 = cv.load_or_create_folds(path, SUBJECT)
    assert path.read_text().splitlines() == ["subject,fold", "2,0", "5,1", "9,2"]
    # a custom assignment stored in the file wins over recomputation
    cv.save_folds(path, pd.DataFrame({"subject": [2, 5, 9], "fold": [0, 0, 1]}))
    t2 = cv.load_or_create_folds(path, SUBJECT)
    assert t2["fold"].tolist() == [0, 0, 1] and t1["fold"].tolist() == [0, 1, 2]
    with pytest.raises(KitError, match=r"folds.csv: fold table is for subjects \[2, 5, 9\], data has \[2, 5\]; "
                                       r"delete it or pass another artifacts folder"):
        cv.load_or_create_folds(path, np.array([2, 5]))
    path.write_text("sub,fold\n2,0\n")
    with pytest.raises(KitError, match="header"):
        cv.load_folds(path)
    path.write_text("subject,fold\n2,x\n")
    with pytest.raises(KitError, match="integer"):
        cv.load_folds(path)
    with pytest.raises(KitError, match="not found"):
        cv.load_folds(tmp_path / "nope.csv")


def test_loso_score_matches_metric_by_hand():
    rng = np.random.default_rng(0)
    subject = np.repeat([1, 2], 20)
    y = np.tile([0, 1], 20)
    score = y * 0.8 + rng.normal(size=40)
    oof = np.repeat(score[:, None], 50, axis=1)
    res = cv.loso_score(oof, y, subject)
    aucs = {s: roc_auc_score(y[subject == s], score[subject == s]) for s in (1, 2)}
    assert res["per_subject_auc"] == {1: pytest.approx(aucs[1]), 2: pytest.approx(aucs[2])}
    assert res["mean_auc"] == pytest.approx(np.mean(list(aucs.values())))
    assert res["loso_score"] == pytest.approx(res["mean_auc"])  # flat curve above 0.5: whole window
    assert res["window"] == [0, 49]
    assert len(res["curve"]) == 50 and isinstance(res["curve"][0], float)
    null = cv.loso_score(-oof, y, subject)  # AUC below 0.5 everywhere -> chance
    assert null["loso_score"] == 0.5 and null["window"] == [None, None]


def test_cross_val_predict_loso_oof_and_test_average():
    rng = np.random.default_rng(1)
    subject = np.repeat([3, 1, 2], 4)
    X = rng.normal(size=(12, 2, 5))
    y = np.tile([0, 1], 6)
    X_test = rng.normal(size=(3, 2, 5))
    seen = []

    def fit_predict(X_tr, y_tr, s_tr, eval_sets):
        seen.append((set(s_tr.tolist()), [set(s.tolist()) for _, s in eval_sets]))
        # prediction = sum of the training subject ids: tells which model predicted a trial
        c = float(np.unique(s_tr).sum())
        return [np.full((len(Xe), 7), c) for Xe, _ in eval_sets]

    oof, test = cv.cross_val_predict_loso(fit_predict, X, y, subject, X_test, np.array([7, 7, 8]))
    assert oof.shape == (12, 7) and test.shape == (3, 7)
    # subject 1 (fold 0) predicted by the model trained on {2, 3} -> 5
    np.testing.assert_array_equal(oof[subject == 1], 5.0)
    np.testing.assert_array_equal(oof[subject == 2], 4.0)
    np.testing.assert_array_equal(oof[subject == 3], 3.0)
    np.testing.assert_allclose(test, (5 + 4 + 3) / 3)
    for train_s, (val_s, test_s) in seen:
        assert not (train_s & val_s) and test_s == {7, 8}
    oof2, none = cv.cross_val_predict_loso(fit_predict, X, y, subject)
    assert none is None
    np.testing.assert_array_equal(oof, oof2)


def test_cross_val_predict_loso_errors():
    X = np.zeros((4, 1, 3))
    y = np.array([0, 1, 0, 1])
    s = np.array([1, 1, 2, 2])
    ok = lambda Xt, yt, st, ev: [np.zeros((len(e), 3)) for e, _ in ev]  # noqa: E731
    with pytest.raises(KitError, match="subject_test"):
        cv.cross_val_predict_loso(ok, X, y, s, X_test=X)
    with pytest.raises(KitError, match="trials"):
        cv.cross_val_predict_loso(ok, X, y[:3], s)
    bad = lambda Xt, yt, st, ev: [np.zeros((len(e) + 1, 3)) for e, _ in ev]  # noqa: E731
    with pytest.raises(KitError, match="fold 0"):
        cv.cross_val_predict_loso(bad, X, y, s)
    with pytest.raises(KitError, match="no validation fold"):
        cv.cross_val_predict_loso(ok, X, y, s, folds=[(np.array([2, 3]), np.array([0]))])
