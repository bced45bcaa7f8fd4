"""What a run reports: findings text built from known numbers, effect sizes, the label-permutation test, the run
summary, 6-digit submissions, progress bars settled to their final state, and the figure style."""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from kit.core.errors import KitError  # noqa: E402
from kit.eval import clusters, effects  # noqa: E402
from kit.report import findings, notebook_findings  # noqa: E402

TIMES = np.arange(200) / 200.0
CH = ["F3", "F4", "C3", "C4", "Cz", "C5", "C6", "CP3", "CP4", "CP5", "CP6", "P7", "P8", "Pz", "O1", "O2"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _time_test(D, clusters_spec, alpha=0.05):
    """A ClusterTest over time with given clusters ``[(start, stop, p), ...]`` on differences ``D``."""
    t_obs = D.mean(0) / (D.std(0, ddof=1) / np.sqrt(len(D)))
    found = []
    for start, stop, p in clusters_spec:
        mask = np.zeros(len(TIMES), bool)
        mask[start:stop + 1] = True
        found.append(clusters.Cluster(start, stop, TIMES[start], TIMES[stop], ("F3",), float(t_obs[mask].sum()), p,
                                      mask))
    return clusters.ClusterTest(D, t_obs, 2.16, tuple(found), TIMES, ("F3",), np.arange(len(D)), alpha, 1024, 0.05)


def test_cluster_sentence_names_the_window_p_and_dz_of_a_known_cluster():
    rng = np.random.default_rng(0)
    D = rng.normal(0, 1, (14, 200))
    D[:, 80:121] += 1.0
    test = _time_test(D, [(80, 120, 0.004), (10, 20, 0.4)])
    es = effects.cluster_effect_size(test, test.clusters[0])
    text = notebook_findings.cluster_sentence(test, what="theta")
    assert text.startswith("theta: a cluster at 0.400-0.600 s, emotional > neutral")
    assert "p = 0.004" in text and f"sum of t = {test.clusters[0].t_sum:.1f}" in text
    assert f"dz = {es.dz:.2f} [{es.low:.2f}, {es.high:.2f}]" in text
    assert "0.050-0.100" not in text  # the cluster with p >= 0.05 is not named as found
    none = notebook_findings.cluster_sentence(_time_test(D, [(10, 20, 0.31)]), what="theta")
    assert none == "theta: no cluster at p < 0.05 (smallest p = 0.310, 0.050-0.100 s)."
    assert "no sample passed |t| > 2.16" in notebook_findings.cluster_sentence(_time_test(D, []), what="theta")


def test_eda_findings_say_what_the_tests_found_and_nothing_else():
    rng = np.random.default_rng(1)
    D = rng.normal(0, 1, (14, 200))
    null = _time_test(D, [(150, 160, 0.62)])
    space = _time_test(D, [])
    tfr = clusters.TFRTest(rng.normal(size=(14, 200, 3)), np.zeros((200, 3)), 2.16, (), TIMES, np.array([4.0, 5, 6]),
                           np.arange(14), 0.05, 1024, 0.05)
    starter = {"loso_score": 0.5123, "window": [0, 85], "mean_auc": 0.51}
    perm = {"p_value": 0.21, "n_permutations": 100, "null_mean": 0.505, "null_p95": 0.531}
    rows = [{"band": "alpha", "significant": 0, "clusters": "-", "min_p": 0.063},
            {"band": "theta", "significant": 0, "clusters": "-", "min_p": 0.105}]
    text = notebook_findings.eda_findings(time_test=null, space_test=space, band_rows=rows, tfr_test=tfr,
                                 evoked_tests={"frontal": space}, starter=starter, times=TIMES, trusted=(0.15, 0.85),
                                 permutation=perm, sleep=False)
    assert "Theta power over time (channel mean): no cluster at p < 0.05 (smallest p = 0.620" in text
    assert "No band shows a cluster at p < 0.05 over channels x time (smallest p: alpha 0.063)" in text
    assert "starter scores 0.5123" in text and "window 0.000-0.425 s" in text
    assert "35 % of that window lies in the samples" in text  # samples 0-29 of 0-85 are before 0.15 s
    assert "not distinguishable from chance (p = 0.210)" in text
    assert "6 cluster tests were run here" in text  # theta over time and space, 2 bands, time x frequency, 1 region
    for word in ("spindle", "K-complex", "NREM", "sleep"):
        assert word not in text  # not sleep data: no sleep physiology
    sig = _time_test(D + np.r_[np.zeros(80), np.ones(41), np.zeros(79)], [(80, 120, 0.01)])
    sleep = notebook_findings.eda_findings(time_test=sig, space_test=space, band_rows=rows, tfr_test=tfr, evoked_tests={},
                                  starter=starter, times=TIMES, sleep=True)
    assert "A theta cluster overlaps 0.4-0.6 s" in sleep


def test_dz_interval_inverts_the_noncentral_t():
    rng = np.random.default_rng(2)
    v = rng.normal(0.6, 1.0, 14)
    es = effects.dz_interval(v)
    assert es.dz == pytest.approx(v.mean() / v.std(ddof=1))
    t, n = es.dz * np.sqrt(14), 14
    assert stats.nct.cdf(t, n - 1, es.low * np.sqrt(n)) == pytest.approx(0.975, abs=1e-6)
    assert stats.nct.cdf(t, n - 1, es.high * np.sqrt(n)) == pytest.approx(0.025, abs=1e-6)
    assert es.low < es.dz < es.high
    with pytest.raises(KitError, match="at least 3"):
        effects.dz_interval([1.0, 2.0])
    for values in (rng.normal(3.0, 0.5, 14), -rng.normal(3.0, 0.5, 14), rng.normal(1.0, 0.05, 5)):
        big = effects.dz_interval(values)  # large |t|: scipy's nct is NaN in parts of the bracket
        assert np.isfinite([big.low, big.high]).all() and big.low < big.dz < big.high


def test_cluster_table_reports_statistic_p_and_effect_size():
    rng = np.random.default_rng(3)
    subject = np.repeat(np.arange(12), 40)
    y = np.tile(np.r_[np.zeros(20), np.ones(20)], 12).astype(int)
    P = rng.normal(size=(len(y), 2, 200))
    P[y == 1, :, 80:120] += 0.8
    test = clusters.cluster_test_time(P, y, subject, TIMES, ch_names=["Cz", "Pz"], n_permutations=256, seed=0)
    assert test.n_permutations == 256 and test.threshold_p == 0.05
    rows = effects.cluster_table(test)
    assert all(tuple(r) == effects.CLUSTER_COLUMNS for r in rows)
    top = rows[0]
    assert top["significant"] and top["p"] < 0.05 and top["sum of t"] > 0 and top["dz low"] > 0
    assert top["window (s)"].startswith("0.4")
    small = clusters.cluster_test_time(P[subject < 5], y[subject < 5], subject[subject < 5], TIMES,
                                       ch_names=["Cz", "Pz"], n_permutations=1024)
    assert small.n_permutations == 32  # 2**5 sign patterns, enumerated


def test_label_permutation_test_shuffles_within_subjects():
    rng = np.random.default_rng(4)
    subject = np.repeat([1, 2, 3], [30, 40, 50])
    y = (rng.random(120) < np.repeat([0.3, 0.5, 0.7], [30, 40, 50])).astype(int)
    x = y + rng.normal(0, 0.3, 120)
    seen = []

    def score(labels):
        seen.append([labels[subject == s].sum() for s in (1, 2, 3)])
        return float(np.corrcoef(x, labels)[0, 1])

    r = effects.label_permutation_test(score, y, subject, n_permutations=50, seed=0)
    assert r["p_value"] == pytest.approx(1 / 51)  # no shuffle comes near the true labels
    assert all(s == seen[0] for s in seen)  # each subject keeps its class counts
    noise = effects.label_permutation_test(lambda lab: float(np.corrcoef(rng.normal(size=120), lab)[0, 1]), y,
                                            subject, n_permutations=50, seed=0)
    assert noise["p_value"] > 0.05


def test_fast_starter_loso_equals_the_starter():
    from kit.data.demo import simulate_subject
    from kit.eval.cv import cross_val_predict_loso, loso_score
    from kit.methods.starter import StarterLDA
    from kit.pipeline.significance import starter_loso_decision, starter_permutation_test

    Xs, ys, ss = [], [], []
    for sid in (2, 3, 4, 5):
        labels = np.r_[np.zeros(15), np.ones(15)].astype(int)
        Xs.append(simulate_subject(0, sid, labels)[0])
        ys.append(labels)
        ss.append(np.full(30, sid))
    X, y, subject = np.concatenate(Xs), np.concatenate(ys), np.concatenate(ss)

    def fit_predict(X_tr, y_tr, s_tr, eval_sets):
        model = StarterLDA().fit(X_tr, y_tr, s_tr)
        return [model.decision_function(a, b) for a, b in eval_sets]

    ref, _ = cross_val_predict_loso(fit_predict, X, y, subject)
    fast = starter_loso_decision(StarterLDA().features(X, subject), y, subject)
    for s in (2, 3, 4, 5):  # the same up to each fold's intercept (one constant per sample)
        m = subject == s
        np.testing.assert_allclose(fast[m] - fast[m].mean(0), ref[m] - ref[m].mean(0), rtol=1e-6, atol=1e-8)
    r = starter_permutation_test(X, y, subject, 200.0, n_permutations=5)
    assert r["observed"] == pytest.approx(loso_score(ref, y, subject)["loso_score"])
    assert r["null_subject_auc"].shape == (5, 4) and r["chance_band"][0] < 0.5 < r["chance_band"][1]


# ----------------------------------------------------------------------------- the run summary
def _summary():
    return {"rule": "stack", "post": ["broadcast"], "submission": "submissions/x.csv",
            "ensemble": {"loso_score": 0.6133, "ci": [0.581, 0.642], "window_s": [0.0, 0.995], "mean_auc": 0.6,
                         "lb_mean": 0.61, "lb_p5": 0.55, "lb_p95": 0.67, "n_subjects": 14, "n_boot": 2000},
            "components": [{"name": "starter", "weight": 0.25, "loso_score": 0.55},
                           {"name": "thetacov", "weight": 0.75, "loso_score": 0.6104},
                           {"name": "eegnet", "weight": 0.0, "loso_score": 0.52}],
            "best_component": {"name": "thetacov", "loso_score": 0.6104},
            "difference": {"value": 0.0029, "low": -0.0155, "high": 0.0199},
            "test_subjects": [{"subject": 1, "trials": 372, "mean": 0.51, "sd": 0.08, "min": 0.2, "max": 0.8,
                               "above_half": 0.55},
                              {"subject": 7, "trials": 479, "mean": 0.62, "sd": 0.0, "min": 0.62, "max": 0.62,
                               "above_half": 1.0}],
            "timings": {"01_eda_theta_power": 80.0, "anchors (background)": 308.0}, "device": "cpu",
            "stage_seconds": {"mae": 20.4, "experts": 61.0},
            "torch_threads": 1}


def test_ensemble_line_and_summary_text():
    s = _summary()
    line = findings.ensemble_line(s)
    assert line == ("ensemble (stack, post-processing broadcast) = 0.75 thetacov + 0.25 starter: LOSO 0.6133 "
                    "[95 % CI 0.5810, 0.6420], +0.0029 vs the best component thetacov (0.6104), 95 % CI "
                    "[-0.0155, +0.0199]")
    text = findings.summary_text(s)
    for piece in ("submissions/x.csv", "0.6133  95 % CI [0.5810, 0.6420]", "[0.5500, 0.6700]", "eegnet 0.5200 (w 0.00)",
                  "S1: 372 trials, mean P(emotional) 0.510 ± 0.080", "S7: 479 trials", "every trial on one side",
                  "anchors (background) 308 s", "stage time:      mae 20 s, experts 61 s",
                  "device:          cpu, torch threads 1"):
        assert piece in text, piece
    md = findings.ensemble_findings(s)
    assert md.startswith("### What this run found") and "cannot be told apart" in md


def test_run_summary_from_artifacts(tmp_path):
    from kit.pipeline.summary import blend_weights, run_summary, test_subject_check

    rng = np.random.default_rng(5)
    subject = np.repeat([2, 3, 4, 5], 30)
    y = np.tile(np.r_[np.zeros(15), np.ones(15)], 4).astype(int)
    oof = np.clip(0.5 + 0.2 * (y[:, None] - 0.5) + rng.normal(0, 0.2, (120, 200)), 0, 1)
    test = np.r_[np.full((3, 200), 0.7), np.full((2, 200), 0.2)]
    ens = tmp_path / "demo" / "ensemble"
    ens.mkdir(parents=True)
    np.savez(ens / "predictions.npz", oof=oof, y=y, subject=subject, test=test, test_subject=np.array([1, 1, 1, 7, 7]),
             test_trial=np.array([0, 1, 2, 0, 1]))
    blend = {"rule": "grid", "components": ["a", "b", "c"], "sfreq": 200.0, "n_times": 200,
             "candidates": [{"weights": [["a", 1.0], ["b", 0.0]], "post": ["none", 0.0]},
                            {"weights": [["a", 0.5], ["b", 0.5]], "post": ["smooth", 51.0]}]}
    (ens / "blend.json").write_text(json.dumps(blend))
    (ens / "result.json").write_text(json.dumps({"rule": "grid", "submission": "s.csv", "best_component": "a",
                                                 "difference": [0.01, -0.02, 0.03],
                                                 "table": [{"method": "a", "loso_score": 0.6},
                                                           {"method": "b", "loso_score": 0.55}]}))
    assert blend_weights(blend) == {"a": 0.75, "b": 0.25}
    s = run_summary(tmp_path / "demo", timings={"x": 1.23}, n_boot=200)
    assert [c["name"] for c in s["components"]] == ["a", "b", "c"] and s["components"][2]["weight"] == 0
    assert s["post"] == ["none", "smooth(51)"] and s["timings"] == {"x": 1.2} and s["data"] == "demo"
    assert s["ensemble"]["ci"][0] <= s["ensemble"]["loso_score"] <= s["ensemble"]["ci"][1]
    assert s["difference"] == {"value": 0.01, "low": -0.02, "high": 0.03}
    assert test_subject_check(test, np.array([1, 1, 1, 7, 7])) == [
        {"subject": 1, "trials": 3, "mean": pytest.approx(0.7), "sd": pytest.approx(0.0, abs=1e-12), "min": 0.7,
         "max": 0.7, "above_half": 1.0},
        {"subject": 7, "trials": 2, "mean": pytest.approx(0.2), "sd": pytest.approx(0.0, abs=1e-12), "min": 0.2,
         "max": 0.2, "above_half": 0.0}]
    json.dumps(s)  # JSON-ready
    with pytest.raises(KitError, match="notebook 05"):
        run_summary(tmp_path / "none")


def test_submission_has_six_significant_digits(tmp_path):
    from kit.pipeline.submission import write_submission

    pred = np.random.default_rng(6).random((3, 200))
    path = write_submission(tmp_path / "s.csv", pred, np.array([1, 1, 7]), np.array([0, 1, 0]))
    values = [line.split(",")[1] for line in path.read_text().splitlines()[1:]]
    assert max(len(v.replace("0.", "", 1).lstrip("0")) for v in values) <= 6
    back = np.array(values, float).reshape(3, 200)
    assert np.abs(back - pred).max() <= 5e-7


def test_settle_progress_bars_writes_the_final_state():
    from kit.app.notebook import settle_progress_bars

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "experts:   0%|          | 0/800 [00:00<?, ?it/s]",
        "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 0, "model_id": "box"}})]
    nb.cells = [cell]
    state = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_l", "IPY_MODEL_p", "IPY_MODEL_r"]}},
             "l": {"model_name": "HTMLModel", "state": {"value": "experts:\u200737%"}},
             "p": {"model_name": "FloatProgressModel", "state": {"value": 299.0, "max": 800.0}},
             "r": {"model_name": "HTMLModel", "state": {"value": "\u2007299/800\u2007[00:41&lt;01:10]"}}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    assert settle_progress_bars(nb) == 1
    assert cell.outputs[0]["data"]["text/plain"] == "experts: 37%| 299/800 [00:41<01:10]"


# ----------------------------------------------------------------------------- the figure style
def test_one_distinct_colour_per_method_and_lever():
    from matplotlib.colors import to_hex

    from kit.methods.registry import METHODS
    from kit.report.common import method_color

    colours = {name: to_hex(method_color(name)) for name in METHODS}
    assert len(set(colours.values())) == len(colours)
    assert method_color("experts (mean of 16)") == method_color("experts")
    assert to_hex(method_color("other", ["starter", "other"])) != colours["starter"]


def test_channel_matrix_marks_dropped_entries_and_reads_at_7_pt():
    from kit.report.models import plot_channel_matrix

    M = np.arange(256.0).reshape(16, 16)
    M = M + M.T
    drop = np.zeros((16, 16), bool)
    drop[0, 1] = drop[1, 0] = True
    fig = plot_channel_matrix({"w": M}, CH, mask=drop)
    ax = fig.axes[0]
    assert all(t.get_fontsize() >= 7 for t in ax.get_xticklabels() + ax.get_yticklabels())
    assert [t.get_text() for t in ax.get_yticklabels()][:5] == ["F3", "F4", "C5", "C3", "Cz"]  # scalp order
    image = ax.images[0].get_array()
    assert image.mask.sum() == 2  # F3-F4 drawn as "dropped", not as a value
    assert "dropped by the stability selection" in fig.legends[0].get_texts()[0].get_text()


def test_attention_by_class_shows_both_classes_and_hatches_the_edges():
    from kit.report.common import HATCH_UNTRUSTED
    from kit.report.models import plot_attention_by_class

    rng = np.random.default_rng(7)
    att = rng.dirichlet(np.ones(25), size=(40, 16))
    y = np.tile([0, 1], 20)
    fig = plot_attention_by_class(att, y, np.repeat([1, 2, 3, 4], 10), TIMES, trusted=(0.15, 0.85))
    ax = fig.axes[0]
    styles = {ln.get_label(): (ln.get_linestyle(), ln.get_marker()) for ln in ax.lines}
    assert styles["neutral"] != styles["emotional"]
    assert any(p.get_hatch() == HATCH_UNTRUSTED for p in ax.patches)
    assert "untrusted samples (filter edge effect)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_channel_auc_bars_start_at_chance():
    from kit.report.models import plot_channel_auc

    auc = np.full(16, 0.5)
    auc[CH.index("Cz")] = 0.56
    auc[CH.index("O2")] = 0.47
    fig = plot_channel_auc(auc, CH)
    bars = fig.axes[0].patches
    assert all(b.get_y() == pytest.approx(0.5) for b in bars)
    heights = dict(zip([t.get_text() for t in fig.axes[0].get_xticklabels()], [b.get_height() for b in bars]))
    assert heights["Cz"] == pytest.approx(0.06) and heights["O2"] == pytest.approx(-0.03)


def test_cluster_figure_orders_channels_by_scalp_and_names_both_hatches():
    from kit.report.clusters import plot_cluster_test
    from kit.report.common import HATCH_NOT_SIGNIFICANT

    rng = np.random.default_rng(8)
    D = rng.normal(0, 1, (14, 200))
    D[:, 80:121] += 1.0
    fig = plot_cluster_test(_time_test(D, [(80, 120, 0.004), (10, 20, 0.4)]), trusted=(0.15, 0.85))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("cluster with p >= 0.05" in t for t in labels)
    assert any("untrusted samples" in t for t in labels)
    assert any(p.get_hatch() == HATCH_NOT_SIGNIFICANT for p in fig.axes[0].patches)
    assert "1024 sign-flip permutations" in fig.axes[0].get_title()
    subject = np.repeat(np.arange(6), 20)
    y = np.tile(np.r_[np.zeros(10), np.ones(10)], 6).astype(int)
    P = rng.normal(size=(120, 16, 200))
    st = clusters.cluster_test_space_time(P, y, subject, TIMES, ch_names=CH, n_permutations=64)
    fig = plot_cluster_test(st)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "F3", "F4", "C5", "C3", "Cz", "C4", "C6", "CP5", "CP3", "CP4", "CP6", "P7", "Pz", "P8", "O1", "O2"]


def test_blend_stability_reads_the_weights_of_every_held_out_subject():
    per = [{"subject": 2, "blend": "0.42 experts + 0.58 thetacov; none", "inner_score": 0.55},
           {"subject": 3, "blend": "0.20 experts + 0.30 riemann + 0.50 thetacov; broadcast", "inner_score": 0.56},
           {"subject": 4, "blend": "1.00 thetacov; none (+ 9 more candidates averaged)", "inner_score": 0.57}]
    rows, verdict = findings.blend_stability(per)
    assert [r["component"] for r in rows] == ["thetacov", "experts", "riemann"]
    assert rows[0] == {"component": "thetacov", "held-out subjects with weight > 0": "3/3",
                       "mean weight": round((0.58 + 0.5 + 1.0) / 3, 3), "min weight": 0.5, "max weight": 1.0}
    assert rows[2]["held-out subjects with weight > 0"] == "1/3"
    assert "post-processing none for 2, broadcast for 1" in verdict
    assert "thetacov's, 0.50-1.00" in verdict


def test_deep_stage_findings_quote_their_numbers():
    good = notebook_findings.mae_findings(0.30, 0.45, n_params=16839, n_trials=2000, epochs=5)
    assert "0.3000" in good and "33 % below copying the nearest visible sample (0.4500)" in good
    bad = notebook_findings.mae_findings(1.02, 0.46, n_params=16839, n_trials=300, epochs=1)
    assert "not below copying" in bad and "in 1 epoch the encoder" in bad
    score = {"loso_score": 0.5618, "window": [0, 199], "mean_auc": 0.5618}
    text = notebook_findings.experts_findings({"F3": 0.55, "C4": 0.46, "Cz": 0.51}, score, TIMES, steps=[[4], [2], [3]],
                                     max_steps=4, n_subjects=3)
    assert "2 of 3 channel experts" in text and "best F3 0.550, worst C4 0.460" in text
    assert "window 0.000-0.995 s" in text and "ended 2 of 3 models before the 4 steps" in text
    none = {"loso_score": 0.5, "window": [None, None], "mean_auc": 0.47}
    fusion = notebook_findings.fusion_findings({"fusion": score, "fusion_lda": none}, TIMES, moved=0, n_folds=14)
    assert "fusion: LOSO 0.5618 (window 0.000-0.995 s; mean AUC 0.5618) — the best" in fusion
    assert "fusion_lda: LOSO 0.5000 (no window above chance; mean AUC 0.4700)." in fusion
    assert "at zero in all 14 folds" in fusion


def test_data_kind_tells_simulated_competition_and_other_folders(tmp_path):
    (tmp_path / "sim").mkdir()
    (tmp_path / "sim" / "demo.json").write_text(json.dumps({"kind": "lateral", "scale": 0.2, "seed": 1}))
    sim = findings.data_kind(tmp_path / "sim", 2000, [1, 7, 12])
    assert sim["kind"] == "simulated" and sim["sleep"] and "`lateral`" in sim["text"]
    assert findings.data_kind(tmp_path / "raw", 10209, [12, 1, 7])["kind"] == "competition"
    other = findings.data_kind(tmp_path / "eegmmidb-lr", 1800, [1, 2])
    assert other["kind"] == "other" and not other["sleep"] and "class 1 and class 0" in other["text"]


def test_feature_choice_windows_in_seconds():
    assert findings.choice_in_seconds("alpha-beta @ (0, 200)", 200.0) == "alpha-beta @ 0.000-0.995 s"
    assert findings.choice_in_seconds("theta @ (70, 131)", 200.0) == "theta @ 0.350-0.650 s"
    assert findings.choice_in_seconds("alpha-beta @ 0.00-1.00 s", 200.0) == "alpha-beta @ 0.00-1.00 s"
