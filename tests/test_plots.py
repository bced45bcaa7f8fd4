"""kit.report.plots: figures have the expected axes and numbers, PNGs are written, bad channels raise."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from kit.core.errors import KitError  # noqa: E402
from kit.report import plots  # noqa: E402

CH = ["F3", "F4", "C3", "C4", "Cz", "C5", "C6", "CP3", "CP4", "CP5", "CP6", "P7", "P8", "Pz", "O1", "O2"]
TIMES = np.arange(200) / 200.0


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    subject = np.repeat([2, 3, 4, 5], 40)
    y = np.tile(np.r_[np.zeros(20), np.ones(20)], 4).astype(np.int8)
    P = rng.normal(size=(len(y), 16, 200)).astype(np.float32)
    P[y == 1, :, 80:120] += 1.0  # emotional trials: +1 between 0.4 and 0.6 s
    return P, y, subject


def _is_png(path):
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_class_means_over_subjects_by_hand():
    # two subjects; subject means of class 1 are 1 and 3 -> mean 2, SEM = std([1, 3], ddof=1)/sqrt(2) = 1
    P = np.array([0.0, 2.0, 4.0, 2.0, 10.0, 20.0])[:, None]
    y = np.array([1, 1, 1, 1, 0, 0])
    subject = np.array([1, 1, 2, 2, 1, 2])
    stats = plots.class_means(P, y, subject)
    np.testing.assert_allclose(stats[1][0], [2.0])
    np.testing.assert_allclose(stats[1][1], [1.0])
    np.testing.assert_allclose(stats[0][0], [15.0])
    # over trials: mean of (0, 2, 4, 2) = 2, SEM = std(ddof=1)/2
    np.testing.assert_allclose(plots.class_means(P, y)[1][1], [np.std([0, 2, 4, 2], ddof=1) / 2])
    subjects, D = plots.subject_differences(P, y, subject)
    np.testing.assert_array_equal(subjects, [1, 2])
    np.testing.assert_allclose(D[:, 0], [1 - 10, 3 - 20])


def test_band_power_by_class_grid_and_png(data, tmp_path):
    P, y, subject = data
    fig = plots.plot_band_power_by_class(P, y, TIMES, CH, subject=subject, save_dir=tmp_path)
    assert len(fig.axes) == 16
    assert [ax.get_title() for ax in fig.axes] == CH
    # the emotional line of channel 0 is the mean over subjects of subject means
    emo = fig.axes[0].lines[-1].get_ydata()
    expected = np.mean([P[(subject == s) & (y == 1), 0].mean(axis=0) for s in (2, 3, 4, 5)], axis=0)
    np.testing.assert_allclose(emo, expected, rtol=1e-5)
    assert _is_png(tmp_path / "band_power_by_class.png")


def test_band_power_grid_for_other_channel_counts(data):
    P, y, _ = data
    fig = plots.plot_band_power_by_class(P[:, :5], y, TIMES)
    assert len(fig.axes) == 5  # 2 x 3 grid, the sixth panel removed


def test_subject_difference(data, tmp_path):
    P, y, subject = data
    fig = plots.plot_subject_difference(P, y, subject, TIMES, CH, channels=["Cz", "Pz"], save_dir=tmp_path,
                                        name="diff")
    assert len(fig.axes) == 3  # time courses, image, colour bar
    grand = fig.axes[0].lines[-1].get_ydata()
    sel = P[:, [CH.index("Cz"), CH.index("Pz")]].mean(axis=1)
    expected = np.mean([sel[(subject == s) & (y == 1)].mean(0) - sel[(subject == s) & (y == 0)].mean(0)
                        for s in (2, 3, 4, 5)], axis=0)
    np.testing.assert_allclose(grand, expected, rtol=1e-5, atol=1e-6)
    assert grand[80:120].mean() > 0.8 and abs(grand[:60].mean()) < 0.2
    assert _is_png(tmp_path / "diff.png")
    with pytest.raises(KitError, match="XX"):
        plots.plot_subject_difference(P, y, subject, TIMES, CH, channels="XX")


def test_topomap_on_competition_channels(data, tmp_path):
    P, y, subject = data
    fig = plots.plot_topomap_difference(P, y, TIMES, CH, subject=subject, save_dir=tmp_path)
    assert len(fig.axes) == 2  # head + colour bar
    lo, hi = fig.axes[0].images[0].get_clim()
    assert lo < 0 < hi and hi == pytest.approx(-lo)
    assert hi == pytest.approx(1.0, abs=0.25)  # the +1 effect inside 0.4-0.6 s
    assert _is_png(tmp_path / "topomap_difference.png")
    assert "n = 4 subjects, 160 trials" in fig.axes[0].get_title()  # n in the title, for a paper


def test_topomap_bad_channel_name_raises(data):
    P, y, _ = data
    bad = CH[:-1] + ["Xyz"]
    with pytest.raises(KitError, match="Xyz"):
        plots.plot_topomap_difference(P, y, TIMES, bad)


def test_shape_errors(data):
    P, y, _ = data
    with pytest.raises(KitError, match="n_times"):
        plots.plot_band_power_by_class(P, y, TIMES[:-1], CH)
    with pytest.raises(KitError, match="both classes"):
        plots.plot_band_power_by_class(P, np.zeros_like(y), TIMES, CH)
    with pytest.raises(KitError, match="shape"):
        plots.plot_band_power_by_class(P[:, 0], y, TIMES, CH)


def test_auc_timecourse(tmp_path):
    from matplotlib.colors import to_hex

    from kit.report.common import METHOD_COLORS

    curve = np.full(200, 0.5)
    curve[80:121] = 0.6
    fig = plots.plot_auc_timecourse({"ensemble": curve + 0.01, "starter": curve, "null": np.full(200, 0.49)}, TIMES,
                                    {"ensemble": (80, 120), "starter": (80, 120), "null": None}, save_dir=tmp_path)
    ax, strip = fig.axes  # the curves, and the strip of window bars under them
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == "chance"
    assert "score 0.600" in labels[1] and labels[2] == "null" and labels[3].startswith("ensemble")  # ensemble last
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_window_extent().x1 - 1  # legend outside the data
    lines = {ln.get_label().split(" ")[0]: ln for ln in ax.lines if not ln.get_label().startswith("_")}
    assert to_hex(lines["starter"].get_color()) == METHOD_COLORS["starter"]
    assert lines["ensemble"].get_linewidth() > lines["starter"].get_linewidth()
    colors = {to_hex(ln.get_color()) for k, ln in lines.items() if k != "chance"}
    assert len(colors) == 3  # no colour reused
    assert not ax.patches and len(strip.patches) == 2  # no shading over the data: one bar per window
    bar = strip.patches[1]
    assert bar.get_x() == pytest.approx(TIMES[80] - 0.0025) and bar.get_width() == pytest.approx(41 * 0.005)
    assert _is_png(tmp_path / "auc_timecourse.png") and (tmp_path / "auc_timecourse.pdf").is_file()
    fig = plots.plot_auc_timecourse(curve, TIMES, (80, 120))
    assert len(fig.axes[1].patches) == 1
    assert len(plots.plot_auc_timecourse(curve, TIMES).axes) == 1
    with pytest.raises(KitError, match="window"):
        plots.plot_auc_timecourse(curve, TIMES, (150, 250))
    with pytest.raises(KitError, match="samples"):
        plots.plot_auc_timecourse({"short": curve[:10]}, TIMES)


def test_png_at_150_dpi(tmp_path):
    from PIL import Image

    fig, ax = plt.subplots(figsize=(2, 1))
    plots.save_figure(fig, tmp_path, "x")
    assert Image.open(tmp_path / "x.png").info["dpi"][0] == pytest.approx(150, abs=1)


def test_psd_by_class_peaks_at_the_sine(tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(200) / 200.0
    y = np.r_[np.zeros(30), np.ones(30)].astype(int)
    X = rng.normal(0, 1, (60, 16, 200))
    X[y == 1] += 5 * np.sin(2 * np.pi * 6 * t)  # emotional trials: a 6 Hz sine on every channel
    fig = plots.plot_psd_by_class(X, y, 200.0, CH, channels=["Cz"], save_dir=tmp_path)
    assert len(fig.axes) == 1
    neu, emo = (line for line in fig.axes[0].lines if line.get_label() in ("neutral", "emotional"))
    f = emo.get_xdata()
    assert f[np.argmax(emo.get_ydata())] == pytest.approx(6.0)
    assert emo.get_ydata()[f == 6.0][0] - neu.get_ydata()[f == 6.0][0] > 10  # dB
    assert abs(emo.get_ydata()[f == 20.0][0] - neu.get_ydata()[f == 20.0][0]) < 3
    assert _is_png(tmp_path / "psd_by_class.png")
