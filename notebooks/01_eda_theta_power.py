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
# # 01 · The data, and theta power after emotional and neutral cues
#
# **The experiment.** Participants learned sequences tied to negative (emotional) or neutral
# pictures. In the night that followed, while they were in NREM sleep (N2/N3), sounds linked
# to one or the other kind of memory were played again: *targeted memory reactivation*
# (TMR). Each trial is the EEG of the **1 s after a cue**: 16 scalp channels
# (contralateral-mastoid reference), 200 Hz, µV. Training subjects come with the class of
# every cue (from the folder: `sleep_emo` or `sleep_neu`); three test subjects do not.
#
# **What to look for.** Abdellahi, Tsimpanouli & Lewis (bioRxiv 2025.08.11.669349) decoded
# emotional vs neutral cues from **theta (4-8 Hz) Hilbert power** with a per-sample LDA,
# leave-one-participant-out, and found a significant cluster **about 0.4-0.6 s after the
# cue**. Theta after a cue during sleep is a common marker of memory reactivation. Single
# trials are dominated by slow oscillations, spindles and noise: the effect only shows after
# averaging many trials, so below every curve is a mean over trials or subjects.
#
# This notebook: counts trials, looks at the spectrum, at theta power over time by class
# (per channel, per subject, on the scalp), tests the class differences with cluster permutation
# tests over subjects (with effect sizes), then runs the organisers' starter leave-one-subject-out
# (LOSO), tests its score against label permutations and shows *where in time* it decodes, with
# the window that the competition metric would score. The starter's predictions are saved for
# notebook 05. All computations live in the `kit` package; the notebook only calls it. The cell
# below says which data this run is on; the last cell says what it found, from its own numbers.

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick" or "full" (this notebook does the same work in both)
FORCE = False  # recompute the starter's predictions even if they are saved

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from kit.eval import cv
from kit.pipeline import stages
from kit.report import findings, notebook_findings, plots
from kit.signal import features, tfr
from kit.store.paths import output_root

run = stages.open_run(DATA, PROFILE)
ds = run.dataset
FIGURES = output_root() / "reports" / "figures"
KIND = findings.data_kind(run.data_root, len(ds.train), ds.test.subjects)
display(Markdown(findings.data_intro(KIND, n_subjects=ds.train.subjects.size, n_trials=len(ds.train),
                                     n_test_subjects=ds.test.subjects.size, n_test_trials=len(ds.test),
                                     ch_names=ds.ch_names, sfreq=ds.sfreq, n_times=len(ds.times))))
print(f"data: {run.data_root}\nfigures: {FIGURES}\nartifacts: {run.artifacts}")

# %% [markdown]
# ## Trials per subject and class
# Each subject weighs the same in the metric (its AUC curve is averaged with the others),
# whatever its number of trials.

# %%
tr, te = ds.train, ds.test
counts = pd.DataFrame({"subject": ds.subject, "split": np.where(ds.is_test, "test", "train"),
                       "class": pd.Categorical.from_codes(ds.y + 1, ["unlabelled", "neutral", "emotional"])})
table = counts.pivot_table(index=["split", "subject"], columns="class", aggfunc="size", fill_value=0,
                           observed=False)
table["total"] = table.sum(axis=1)
table["emotional share"] = (table["emotional"] / table[["neutral", "emotional"]].sum(axis=1)).round(2)
table.columns = [f"{c} (trials)" if c != "emotional share" else c for c in table.columns]
table

# %% [markdown]
# ## The spectrum after the cue
# Welch spectrum of each 1-s trial (1 Hz resolution), averaged over channels; mean ± SEM over
# subjects. In NREM sleep EEG one expects slow activity (delta) to dominate, with a spindle bump
# in sigma (12-16 Hz) in N2; on other data the spectrum shows what dominates there. A class
# difference in theta would be small on this scale.

# %%
fig = plots.plot_psd_by_class(tr.X, tr.y, tr.sfreq, tr.ch_names, subject=tr.subject, save_dir=FIGURES,
                              name="01_psd_by_class")

# %% [markdown]
# ## The montage, and the data as MNE objects
# Where the channels sit (mne's 10-20 template) and which are neighbours for the cluster tests
# below (grey lines). `Dataset.to_epochs()` gives the trials as an `mne.EpochsArray` (volts,
# montage, events `neutral` / `emotional`, per-trial metadata), so every MNE tool applies; here
# MNE's own comparison of the two classes' evoked responses (one `Evoked` per subject and class,
# 95 % confidence band over subjects) on the fronto-central channels.

# %%
epochs = tr.to_epochs()
display(epochs)
fig = plots.plot_montage(ds.ch_names, save_dir=FIGURES, name="01_montage")
front = [c for c in ("F3", "F4", "Fz", "C3", "C4", "Cz") if c in ds.ch_names] or list(ds.ch_names[:3])
fig = plots.plot_mne_compare_evokeds(epochs, front, save_dir=FIGURES, name="01_mne_compare_evokeds")

# %% [markdown]
# ## Which samples to trust: the filter edge effect
# Band power near the ends of a 1-s trial depends on EEG the trial does not hold: the band-pass
# and the Hilbert transform reach past the cut. How far, per band, is measured on a long 1/f
# noise recording (`kit.signal.edges.edge_effect`): band power is computed once on the whole
# recording and once on 1-s trials cut out of it, exactly as the kit computes it for real
# trials (each trial padded with its edge values, which did as well as or better than
# reflection for every band but delta), and correlated sample by sample. A sample is trusted
# while it keeps 90 % of the correlation at the trial's centre. The figures below hatch the
# untrusted samples; read effects inside the trusted span only.

# %%
from kit.signal import edges

edge = edges.edge_effect(ds.sfreq, len(ds.times))
fig = plots.plot_edge_effect(edge, ds.times, save_dir=FIGURES, name="01_edge_effect")
pd.DataFrame([{"band": b, "r at the centre": round(e.centre, 3),
               "cut at start + end (s)": f"{e.n_edge[0] / ds.sfreq:.3f} + {e.n_edge[1] / ds.sfreq:.3f}",
               "trusted (s)": f"{ds.times[e.first]:.3f}-{ds.times[e.last]:.3f}"} for b, e in edge.items()])

# %% [markdown]
# ## Theta power over time, emotional vs neutral
# Theta (4-8 Hz) band-pass (4th-order Butterworth, zero phase), Hilbert envelope, log power,
# z-scored per subject and channel (as the organisers' starter does): 0 is a subject's
# average theta power over all its trials and samples. Mean ± SEM **over subjects**; the
# dashed line is the cue, the grey band 0.4-0.6 s, hatched the samples the edge effect spoils
# (about 0.15 s at each end for theta: the fall of the curves there is the filter, not the brain).

# %%
P = features.theta_power(ds.X, ds.sfreq, ds.subject)  # (n_trials, n_chans, n_times), z-scored log power
P_tr = P[~ds.is_test]
TRUSTED = (ds.times[edge["theta"].first], ds.times[edge["theta"].last])  # s
fig = plots.plot_band_power_by_class(P_tr, tr.y, tr.times, tr.ch_names, subject=tr.subject,
                                     unit="z log power", trusted=TRUSTED, save_dir=FIGURES, name="01_theta_by_class")

# %% [markdown]
# ## Is the difference shared by the subjects?
# Emotional minus neutral theta power, averaged over channels, for each subject (thin lines,
# and one row each on the right), with the grand mean ± SEM in black. A group effect that a
# cross-subject decoder can use needs most subjects to go the same way at the same time.

# %%
fig = plots.plot_subject_difference(P_tr, tr.y, tr.subject, tr.times, tr.ch_names, unit="z log power",
                                    save_dir=FIGURES, name="01_theta_difference_by_subject")

# %%
from kit.eval.effects import dz_interval as clusters_dz

W = (tr.times >= 0.4) & (tr.times <= 0.6)
subjects, D = plots.subject_differences(P_tr[:, :, W].mean(axis=(1, 2)), tr.y, tr.subject)
print(f"0.4-0.6 s, all channels: emotional > neutral in {(D > 0).sum()} of {D.size} subjects; "
      f"mean difference {D.mean():+.3f} z (SEM {D.std(ddof=1) / np.sqrt(D.size):.3f}; "
      f"{clusters_dz(D).describe()}, 95 % CI)")

# %% [markdown]
# ## Is the difference real? Cluster-based permutation tests over subjects
# The test the field uses (Maris & Oostenveld 2007; `mne.stats`): each subject's
# emotional-minus-neutral theta curve is one observation; a cluster is a run of samples whose
# one-sample t over subjects passes the two-sided p < 0.05 threshold, its statistic the summed t;
# under the null the sign of each subject's difference is flipped at random, and a cluster is
# significant when it beats the largest cluster of 95 % of the permutations (fixed seed:
# the same p-values on every run). Beside each cluster: its statistic (sum of t), p and the
# effect size, Cohen's dz (each subject's difference averaged over the cluster, mean / SD over
# subjects) with its 95 % interval (noncentral t); dz is measured on the cluster the test found,
# so it overstates the population effect. First over time, on the channel average (red:
# significant clusters, `xx`: clusters with p >= 0.05, `//`: samples the edge effect spoils)...

# %%
from kit.eval import clusters, effects

ct = clusters.cluster_test_time(P_tr, tr.y, tr.subject, tr.times, ch_names=tr.ch_names, seed=0)
print(f"cluster-forming threshold |t| > {ct.threshold:.2f} (two-sided p < {ct.threshold_p:g}, "
      f"df {len(ct.subjects) - 1}); "
      f"{ct.n_permutations} sign-flip permutations")
fig = plots.plot_cluster_test(ct, band="theta", n_trials=len(tr), trusted=TRUSTED, save_dir=FIGURES,
                              name="01_theta_cluster_test")
pd.DataFrame(effects.cluster_table(ct), columns=effects.CLUSTER_COLUMNS).drop(columns="where")

# %% [markdown]
# ...then over channels x time, with neighbours on the scalp from the 10-20 template
# (Delaunay triangulation, `kit.data.montage.channel_adjacency`): which channels carry the
# cluster. The map is the t over subjects; black outlines the significant clusters.

# %%
cst = clusters.cluster_test_space_time(P_tr, tr.y, tr.subject, tr.times, ch_names=tr.ch_names, seed=0)
fig = plots.plot_cluster_test(cst, band="theta", n_trials=len(tr), save_dir=FIGURES,
                              name="01_theta_cluster_test_channels")
pd.DataFrame(effects.cluster_table(cst), columns=effects.CLUSTER_COLUMNS).head(5)  # the 5 with the smallest p

# %% [markdown]
# ## Every band
# The same spatio-temporal test for each of the competition's five bands (each band's log
# Hilbert power z-scored per subject, as for theta): which band shows a cluster, when, where.
# On the demo the simulator puts its effect in theta; on real data the table says where the
# information is before any model is trained.

# %%
band_rows = clusters.band_cluster_table(tr.X, tr.y, tr.subject, tr.sfreq, tr.times, ch_names=tr.ch_names, seed=0)
band_table = pd.DataFrame(band_rows).rename(columns={"hz": "band (Hz)", "n_subjects": "subjects",
                                                     "significant": "clusters p < 0.05", "min_p": "smallest p"})
band_table.round({"smallest p": 3})

# %% [markdown]
# ## Time-frequency: which frequencies, when
# Morlet wavelets 2-30 Hz (1-Hz steps, `freqs / 2` cycles: 80 ms in time and 2 Hz in
# frequency at every frequency; `mne.time_frequency.tfr_array_morlet`), log power z-scored per
# subject, channel and frequency over all its trials and samples (baseline-free: the trials
# start at the cue, so there is no pre-cue baseline; 0 is the subject's mean power at that
# frequency), averaged over channels. Left the emotional-minus-neutral map averaged over
# subjects, right its t over subjects; black outlines the clusters of a cluster permutation
# test over time x frequency (adjacent samples and frequencies are neighbours). The first and
# last ~0.15 s carry the same edge effect as the band power.

# %%
T_tr = tfr.tfr_by_trial(tr.X, tr.subject, tr.sfreq)  # (n_trials, n_times, n_freqs), z log power
tt = clusters.cluster_test_tfr(T_tr, tr.y, tr.subject, tr.times, tfr.FREQS, seed=0)
fig = plots.plot_tfr_test(tt, n_trials=len(tr), save_dir=FIGURES, name="01_tfr_difference")
pd.DataFrame(effects.cluster_table(tt), columns=effects.CLUSTER_COLUMNS).head(5)

# %% [markdown]
# ## The evoked response
# The trial-averaged EEG itself (low-passed at 30 Hz, µV, no baseline: the trials start at
# the cue), per scalp region, by class, mean ± SEM over subjects. In NREM sleep a sound
# evokes a K-complex / slow-oscillation response (a negative wave near 0.5 s and a positive one
# after it, largest frontally); other data have their own evoked response, or none. A class
# difference in this response would be shaded (a cluster test over time per region; none
# significant means the classes evoke the same wave, and a band-power effect above is not a
# by-product of a larger evoked response).

# %%
E_tr = features.lowpass(tr.X, tr.sfreq, 30.0)  # (n_trials, n_chans, n_times), µV
evoked_tests = clusters.group_cluster_tests(E_tr, tr.y, tr.subject, tr.times, ch_names=tr.ch_names, seed=0)
fig = plots.plot_evoked_by_class(E_tr, tr.y, tr.subject, tr.times, tr.ch_names, tests=evoked_tests, cutoff=30,
                                 save_dir=FIGURES, name="01_evoked_by_class")
pd.DataFrame([{"region": r, "channels": " ".join(t.ch_names),
               "clusters p < 0.05": "; ".join(f"{c.tmin:.3f}-{c.tmax:.3f} s, p = {c.p_value:.3f}"
                                              for c in t.significant()) or "none",
               "smallest p": round(min((c.p_value for c in t.clusters), default=1.0), 3)}
              for r, t in evoked_tests.items()])

# %% [markdown]
# ## Where on the scalp?
# Emotional minus neutral theta power averaged over 0.4-0.6 s, mean over subjects, on the
# 10-20 template positions (mne `standard_1020`).

# %%
fig = plots.plot_topomap_difference(P_tr, tr.y, tr.times, tr.ch_names, subject=tr.subject, tmin=0.4, tmax=0.6,
                                    unit="z log power", save_dir=FIGURES, name="01_theta_topomap_0.4-0.6s")

# %% [markdown]
# ## Subjects differ more than classes do: the shift that re-centring removes
# Each trial's 8-30 Hz channel covariance (OAS, whole trial) as a point in the tangent space at
# the identity (`pyriemann`; Barachant et al. 2012), projected on its first two principal
# components and coloured by subject: left as recorded, middle after each subject's covariances
# are whitened by that subject's own Riemannian mean (no labels; Zanini et al., IEEE TBME 2018).
# Right: how far each subject's mean covariance lies from the grand mean (Riemannian distance),
# before and after. A classifier trained on some subjects and applied to a new one meets this
# shift first; the `riemann` anchor (notebook 05) re-centres every subject before it decodes.

# %%
from kit.methods.riemann import subject_shift
from kit.report.shift import plot_subject_shift

shift = subject_shift(tr.X, tr.subject, tr.sfreq, band=(8.0, 30.0))
fig = plot_subject_shift(shift, tr.subject, save_dir=FIGURES, name="01_subject_shift")
print(f"Riemannian distance of the subjects' mean covariances to the grand mean: "
      f"{shift['distance_before'].mean():.2f} (range {shift['distance_before'].min():.2f}-"
      f"{shift['distance_before'].max():.2f}) before re-centring, at most {shift['distance_after'].max():.1e} after")

# %% [markdown]
# ## The organisers' starter, leave-one-subject-out
# Theta Hilbert power z-scored per subject, one LDA per sample trained on the other
# subjects (`kit.methods.registry`, "starter"). Each training subject is predicted by the model that
# never saw it, so the AUC curve below is an honest estimate for new subjects. The metric:
# for each sample, the AUC per subject, averaged over subjects (m[t]); the longest run of
# m[t] > 0.5 lasting at least 10 samples (50 ms) is the window, and the score is the mean of
# m[t] over it (0.5 without such a run). The public anchor on the real data is about 0.52.
#
# The out-of-fold and test predictions are saved to `artifacts/<data>/starter/predictions.npz`
# (`oof`, `test`, `subject`, `y`, `test_subject`, `test_trial`), where notebook 05 picks
# them up for the ensemble.

# %%
run.verbose = FORCE or not (run.artifacts / "starter" / "stage.json").is_file()  # no log line when reused
preds = stages.run_baseline_stage(run, "starter", force=FORCE)
score = cv.loso_score(preds["oof"], tr.y, tr.subject)
start, stop = score["window"]
print(f"starter LOSO score {score['loso_score']:.4f}, window {findings.window_text(score, tr.times)}; "
      f"mean AUC over samples {score['mean_auc']:.4f}")
print(f"predictions: {run.artifacts / 'starter' / 'predictions.npz'}")

# %%
fig = plots.plot_auc_timecourse({"starter": np.asarray(score["curve"])}, tr.times,
                                None if start is None else (start, stop),
                                title="organisers' starter: LOSO AUC per sample (mean over subjects)",
                                save_dir=FIGURES, name="01_starter_auc_timecourse")

# %% [markdown]
# ## Is the starter's score above chance? A label-permutation test
# The labels are shuffled among each subject's trials (each subject keeps its class balance), the
# whole leave-one-subject-out evaluation is rerun on them, and the window score recomputed, 100
# times (`kit.pipeline.significance`: the starter's LDAs refitted from per-subject sums, same
# model). p = share of permutations scoring at least the true score (counting it). The same
# permutations give each subject's AUC under chance: the grey band in the per-subject figure
# holds 95 % of them.

# %%
from kit.pipeline.significance import starter_permutation_test

perm = starter_permutation_test(tr.X, tr.y, tr.subject, tr.sfreq, n_permutations=20 if PROFILE == "smoke" else 100,
                                seed=0)
print(f"starter: LOSO {perm['observed']:.4f}; permuted labels: mean {perm['null_mean']:.4f}, "
      f"95th percentile {perm['null_p95']:.4f}; p = {perm['p_value']:.3f} ({perm['n_permutations']} permutations)")
fig = plots.plot_permutation_test(perm, save_dir=FIGURES, name="01_starter_permutation_test")
fig = plots.plot_subject_auc({"starter": score["per_subject_auc"]}, chance_band=perm["chance_band"],
                             save_dir=FIGURES, name="01_starter_subject_auc")

# %%
pd.Series(score["per_subject_auc"], name="AUC (mean over samples)").rename_axis("subject").round(3).to_frame().T

# %%
display(Markdown(notebook_findings.eda_findings(time_test=ct, space_test=cst, band_rows=band_rows, tfr_test=tt,
                                       evoked_tests=evoked_tests, starter=score, times=tr.times, trusted=TRUSTED,
                                       permutation=perm, sleep=KIND["sleep"])))
