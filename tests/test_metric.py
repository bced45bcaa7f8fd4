"""Tests for kit.eval.metric: per-sample AUC and the window-based competition score."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kit.core.errors import KitError
from kit.eval.metric import WindowScore, auc_curves, competition_score, curves_auc, per_sample_auc, rows_auc, window_score


def test_per_sample_auc_by_hand_with_ties():
    # column 0: pos {0.8, 0.5} vs neg {0.5, 0.2}: pairs 1 + 1 + 0.5 + 1 = 3.5 of 4
    # column 1: pos {0.1, 0.3} vs neg {0.3, 0.3}: pairs 0 + 0 + 0.5 + 0.5 = 1 of 4
    # column 2: all tied -> 0.5
    pred = np.array([[0.8, 0.1, 1.0], [0.5, 0.3, 1.0], [0.5, 0.3, 1.0], [0.2, 0.3, 1.0]])
    y = np.array([1, 1, 0, 0])
    np.testing.assert_allclose(per_sample_auc(pred, y), [0.875, 0.25, 0.5])


def test_per_sample_auc_equals_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 57)
    pred = rng.normal(size=(57, 30)) + 0.3 * y[:, None]
    pred[:, 15:] = np.round(pred[:, 15:], 1)  # many ties in half the columns
    ref = [roc_auc_score(y, pred[:, t]) for t in range(30)]
    np.testing.assert_allclose(per_sample_auc(pred, y), ref, rtol=0, atol=1e-12)


def test_per_sample_auc_ties_bit_for_bit_as_scipy_average_ranks():
    # the tie path ranks only the tied samples itself: the Mann-Whitney U from scipy's average ranks, exactly,
    # with runs at the first and last places, runs of 2-5 equal scores and tie-free samples in the same call
    from scipy.stats import rankdata

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 40)
    pred = rng.normal(size=(40, 12))
    pred[:, 4:] = np.round(pred[:, 4:] * 2) / 2  # few distinct values: long runs, at both ends too
    pred[:5, 3] = pred[:, 3].min()  # one run of 5 at the lowest places in an otherwise tie-free sample
    n1, n0 = int(y.sum()), int((1 - y).sum())
    ref = (rankdata(pred, axis=0)[y == 1].sum(axis=0) - n1 * (n1 + 1) / 2) / (n1 * n0)
    out = per_sample_auc(pred, y)
    assert np.array_equal(out, ref)


@pytest.mark.parametrize("n_rows", [3, 12])
def test_curves_auc_bit_for_bit_as_rows_auc(n_rows):
    # warm-started from the previous sample's order (the grid's path, >= 8 rows) or one argsort (< 8 rows):
    # the same AUCs bit for bit, on smooth curves, on a jump between samples, with ties within a sample
    # (runs of equal scores that the previous order splits) and with constant rows
    rng = np.random.default_rng(2)
    n_times, n_trials = 30, 41
    pos = rng.integers(0, 2, n_trials).astype(bool)
    P = np.cumsum(rng.normal(size=(n_rows, n_times, n_trials)) * 0.2, axis=1) + 0.3 * pos
    P[:, 12] = rng.normal(size=(n_rows, n_trials))  # an unrelated order at one sample
    P[:, 20:] = np.round(P[:, 20:] * 2) / 2  # ties from sample 20 on
    P[0, :] = 1.0  # one row all tied
    ref = rows_auc(P.reshape(-1, n_trials), pos).reshape(n_rows, n_times)
    out = curves_auc(P, pos)
    assert out.shape == (n_rows, n_times)
    assert np.array_equal(out, ref)
    np.testing.assert_allclose(out[1], [roc_auc_score(pos, P[1, t]) for t in range(n_times)], rtol=0, atol=1e-12)
    assert np.all(out[0] == 0.5)
    # blends of components formed one sample at a time: what the blended table gives, bit for bit
    W = rng.dirichlet(np.ones(n_rows), size=n_rows + 5)  # (n_blends, C): the rows above as components
    ref = rows_auc(np.tensordot(W, P, axes=(1, 0)).reshape(-1, n_trials), pos).reshape(n_rows + 5, n_times)
    assert np.array_equal(curves_auc(P, pos, weights=W), ref)


def test_per_sample_auc_errors():
    y = np.array([0, 1, 0])
    with pytest.raises(KitError, match="NaN"):
        per_sample_auc(np.array([[0.1], [np.nan], [0.2]]), y)
    with pytest.raises(KitError, match="does not match"):
        per_sample_auc(np.zeros((4, 2)), y)
    with pytest.raises(KitError, match="one class"):
        per_sample_auc(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(KitError, match="0/1"):
        per_sample_auc(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(KitError, match="n_trials, n_times"):
        per_sample_auc(np.zeros(3), y)


def test_window_equal_runs_earliest_wins():
    curve = np.full(100, 0.5)
    curve[10:22] = 0.6
    curve[50:62] = 0.7  # same length, higher, later
    ws = window_score(curve)
    assert (ws.start, ws.stop, ws.length) == (10, 21, 12)
    assert ws.score == pytest.approx(0.6)


def test_window_min_len_9_vs_10_samples():
    curve = np.full(200, 0.4)
    curve[0:9] = 0.9  # 9 samples
    curve[100:110] = np.linspace(0.51, 0.6, 10)  # 10 samples, mean 0.555
    ws = window_score(curve, min_len=10)
    assert (ws.start, ws.stop) == (100, 109)
    assert ws.score == pytest.approx(0.555)
    ws = window_score(curve, min_len=11)
    assert (ws.score, ws.start, ws.stop, ws.length) == (0.5, None, None, 0)
    # min_len=9: both qualify, the longest (10) wins even though the other is higher
    assert window_score(curve, min_len=9).start == 100


def test_window_no_run_and_strict_threshold():
    assert window_score(np.full(200, 0.49)).score == 0.5
    assert window_score(np.full(200, 0.5)).start is None  # m == 0.5 is not above chance
    curve = np.full(200, 0.3)
    curve[0:20] = 0.6
    curve[10] = 0.5  # breaks the run into 0..9 (10) and 11..19 (9)
    ws = window_score(curve)
    assert (ws.start, ws.stop) == (0, 9)
    assert ws.score == pytest.approx(0.6)
    curve[10] = 0.5000001
    assert (window_score(curve).start, window_score(curve).stop) == (0, 19)


def test_window_errors():
    with pytest.raises(KitError, match="NaN"):
        window_score(np.array([0.6, np.nan]))
    with pytest.raises(KitError, match="n_times"):
        window_score(np.zeros((2, 3)))


def test_constant_predictions_give_the_whole_second():
    rng = np.random.default_rng(1)
    y = np.tile([0, 1], 20)
    subject = np.repeat([1, 2], 20)
    score = y + rng.normal(0, 1.0, 40)
    pred = np.repeat(score[:, None], 200, axis=1)
    ws = competition_score(pred, y, subject)
    expected = np.mean([roc_auc_score(y[subject == s], score[subject == s]) for s in (1, 2)])
    assert expected > 0.5
    assert (ws.start, ws.stop) == (0, 199)
    assert ws.score == pytest.approx(expected)
    np.testing.assert_allclose(ws.curve, expected)


def test_subjects_weigh_equally_regardless_of_trial_count():
    # subject 1: 10 trials, perfectly separated (AUC 1); subject 2: 200 trials, all tied (AUC 0.5)
    y1 = np.tile([0, 1], 5)
    y2 = np.tile([0, 1], 100)
    pred = np.concatenate([np.repeat(y1[:, None], 50, 1) * 1.0, np.full((200, 50), 0.7)])
    y = np.concatenate([y1, y2])
    subject = np.concatenate([np.full(10, 1), np.full(200, 2)])
    ws = competition_score(pred, y, subject)
    assert ws.score == pytest.approx(0.75)  # pooled over trials it would be 6025/11025 = 0.546
    assert ws.per_subject_auc == {1: pytest.approx(1.0), 2: pytest.approx(0.5)}
    np.testing.assert_allclose(ws.subject_curves[2], 0.5)
    assert isinstance(ws, WindowScore)


def test_auc_curves_per_subject_equal_sklearn_and_sorted():
    rng = np.random.default_rng(2)
    subject = rng.choice([7, 3, 12], 90)
    y = rng.integers(0, 2, 90)
    pred = rng.normal(size=(90, 5))
    subjects, A = auc_curves(pred, y, subject)
    assert subjects.tolist() == [3, 7, 12]
    for i, s in enumerate(subjects):
        m = subject == s
        np.testing.assert_allclose(A[i], [roc_auc_score(y[m], pred[m, t]) for t in range(5)])
    ws = competition_score(pred, y, subject, min_len=1)
    np.testing.assert_allclose(ws.curve, A.mean(0))


def test_competition_score_errors():
    pred = np.zeros((4, 3))
    with pytest.raises(KitError, match="subject 2: one class only"):
        competition_score(pred, np.array([0, 1, 1, 1]), np.array([1, 1, 2, 2]))
    with pytest.raises(KitError, match="subject"):
        competition_score(pred, np.array([0, 1, 0, 1]), np.array([1, 1, 2]))
    with pytest.raises(KitError, match="NaN"):
        competition_score(pred + np.nan, np.array([0, 1, 0, 1]), np.array([1, 1, 2, 2]))
