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
# # 03 · Channel experts on the MAE encoder, trained across subjects
#
# Sixteen experts, one per channel. Each reads, at every model sample, the frozen MAE
# encoder's token (notebook 02) beside the features it encodes, and pools them over time by
# **attention** (`kit.deep.nets.AttentionPoolHead`, Ilse et al., ICML 2018): a score per sample
# (plus a learned time prior shared by the experts) becomes a softmax weight over the 1-s
# trial, and the expert's trial logit is the weighted sum of per-sample logits. The loss is
# taken on that **one logit per trial**, the level at which the metric scores a subject.
#
# How the experts learn across subjects is one flag, `ExpertsConfig.meta` (`kit.deep.maml`):
#
# * `"none"` (default): plain training on class-balanced trials of a few subjects per step;
# * `"mldg"`: first-order MLDG (Li et al., AAAI 2018): the **inner loop** (`fast_adapt`)
#   adapts on **support** subjects, the outer loss is taken on a *different* (**query**)
#   subject: meta-training for zero-shot transfer, which is what a held-out subject without
#   labels needs;
# * `"fomaml"`: the 3rd place's first-order MAML, support and query from the same subject.
#
# `python -m kit bench` compares the three (README, lever table). Everything runs
# **leave-one-subject-out**; each model's number of steps is chosen by early stopping on
# held-out *training* subjects (never subject k). The frozen encoder makes every fold,
# cross-fit model and seed one batched computation. Outputs at model resolution (trial
# logits, per-sample logits, attention) go to `artifacts/<data>/experts/predictions.npz`,
# beside `fold{k}_seed{s}.pt` (each loadable alone with `kit.deep.experts.load_bank`).
# The cell below names this run's data; the last cell says which channels decode, how well, and
# where early stopping ended training (a progress bar that stops short of 100 % is early
# stopping, not an interruption).

# %% tags=["parameters"]
DATA = None  # data folder; None = $KIT_DATA, the Kaggle input, data/raw or the demo data
PROFILE = "quick"  # "quick", "full" or "thirdplace" (also trains the 3rd place as published: GPU-sized)
FORCE = False  # retrain even if artifacts for the same config exist

# %%
import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from kit.eval.cv import loso_score
from kit.eval.metric import subject_auc
from kit.pipeline import stages
from kit.pipeline.profiles import stage_config
from kit.report import findings, notebook_findings
from kit.report.plots import plot_attention_by_class, plot_auc_timecourse, plot_channel_auc
from kit.signal.edges import edge_effect
from kit.store.paths import output_root

run = stages.open_run(DATA, PROFILE)
cfg = stage_config("experts", PROFILE)
FIGURES = output_root() / "reports" / "figures"
display(Markdown(findings.intro_for(run)))
pd.DataFrame(findings.config_rows(cfg)).set_index("setting")

# %%
run.verbose = FORCE or not (run.artifacts / "experts" / "stage.json").is_file()  # the bar when it trains
preds = stages.run_experts_stage(run, cfg, force=FORCE)
steps = preds["steps"]  # (n_folds, n_seeds): outer steps early stopping kept
print(f"{steps.size} LOSO models (one per held-out subject and seed): early stopping kept {int(steps.min())}-"
      f"{int(steps.max())} of the {cfg.max_steps} outer steps (median {int(np.median(steps))})")

# %% [markdown]
# ## Which channels decode?
# Mean per-subject AUC of each expert's out-of-fold trial logit, and the LOSO score of the
# experts' mean trial logit (the `experts` component of notebook 05).

# %%
tr = run.train
logits = preds["oof_logits"]  # (n_trials, n_chans): each expert's out-of-fold trial logit
per_subject = np.array([[subject_auc(logits[tr.subject == s, c], tr.y[tr.subject == s], tr.subject[tr.subject == s])
                         for c in range(len(tr.ch_names))] for s in tr.subjects])  # (n_subjects, n_chans)
per_channel = dict(zip(tr.ch_names, per_subject.mean(axis=0)))
mean_score = loso_score(preds["oof"], tr.y, tr.subject)
fig = plot_channel_auc(list(per_channel.values()), tr.ch_names, per_subject=per_subject,
                       title=f"single-expert decoding: out-of-fold AUC per channel (mean ± SEM over "
                             f"{len(tr.subjects)} subjects, {len(tr)} trials)",
                       save_dir=FIGURES, name="03_expert_auc_by_channel")
print(f"experts (mean of 16): LOSO score {mean_score['loso_score']:.4f}, window "
      f"{findings.window_text(mean_score, tr.times)}")

# %% [markdown]
# ## Where in the trial do the experts look?
# The attention weights are a curve over the trial per expert and trial (they sum to 1 over
# the pooled time steps); averaged over the experts, by class, mean ± SEM over subjects. A flat
# curve (the dotted line) would be plain averaging; a peak says which part of the 1 s after
# the cue the experts rely on; a class difference, that they look elsewhere after emotional cues.
# Hatched: the samples where the band-power features the experts read are spoiled by the filter
# edge effect (the widest span over the bands, notebook 01): attention there is attention to
# filter artefacts.

# %%
edge = edge_effect(tr.sfreq, len(tr.times))
TRUSTED = (max(tr.times[e.first] for e in edge.values()), min(tr.times[e.last] for e in edge.values()))
fig = plot_attention_by_class(preds["oof_attention"], tr.y, tr.subject, tr.times, trusted=TRUSTED, save_dir=FIGURES,
                              name="03_expert_attention")

# %%
fig = plot_auc_timecourse({"experts (mean of 16)": np.array(mean_score["curve"])}, tr.times,
                          window={"experts (mean of 16)": tuple(mean_score["window"])},
                          title="channel experts: LOSO AUC per sample (mean over subjects)", save_dir=FIGURES,
                          name="03_experts_auc_timecourse")

# %% [markdown]
# ## The 3rd place as published (`PROFILE = "thirdplace"`)
# The experts above train across subjects without meta-learning by default (`meta="none"`: it scored
# best here; MLDG and FOMAML are one flag of `ExpertsConfig`). With the `thirdplace` profile this cell
# also trains the 3rd place's own design (`kit.deep.thirdplace`): its MAE on 5 band powers x 200
# samples, then per LOSO fold 16 first-order MAML experts with per-sample heads (19,489 parameters
# each), as published; hours on a CPU, meant for a GPU kernel.

# %%
if PROFILE == "thirdplace":
    from kit.pipeline.levers import run_thirdplace_stage

    third = run_thirdplace_stage(run, force=FORCE)
    third_score = loso_score(third["oof"], tr.y, tr.subject)
    print(f"thirdplace (FOMAML experts as published): LOSO {third_score['loso_score']:.4f} "
          f"against the experts above {mean_score['loso_score']:.4f}")
else:
    print(f"profile {PROFILE!r}: the 3rd place's FOMAML pipeline as published runs with PROFILE = 'thirdplace'")

# %%
display(Markdown(notebook_findings.experts_findings(per_channel, mean_score, tr.times, steps=steps, max_steps=cfg.max_steps,
                                           n_subjects=len(tr.subjects))))
