"""What a run found, in words computed from its numbers: the pieces every notebook's "What this run found" cell
uses (windows in seconds, the data's description), notebook 05's cell and the run summary of ``kit run``.

Every function takes results the kit computed (LOSO scores, the summary of
:func:`kit.pipeline.summary.run_summary`) and returns markdown or plain text; nothing here states a finding
that its inputs do not carry.  The notebooks display the text (``display(Markdown(...))``); the tests feed
known results and check the sentences.  Notebooks 01-04's findings are in :mod:`kit.report.notebook_findings`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

COMPETITION_TRIALS = 10209
"""Training trials of the competition's recordings (COMPETITION.md), to tell them from other folders."""
COMPETITION_TEST_SUBJECTS = (1, 7, 12)


# ----------------------------------------------------------------------------- small pieces
def config_rows(config) -> list[dict]:
    """A dataclass config as rows ``{"setting": name, "value": value}`` (tuples and floats written plainly), for a
    two-column table instead of the dataclass's one-line repr."""
    import dataclasses

    rows = []
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if isinstance(v, float):
            v = f"{v:g}"
        elif isinstance(v, (tuple, list)):
            v = ", ".join(str(u) for u in v) or "-"
        rows.append({"setting": f.name, "value": str(v)})
    return rows


def intro_for(run) -> str:
    """:func:`data_intro` of a :class:`kit.pipeline.run.Run`'s data folder."""
    ds = run.dataset
    kind = data_kind(run.data_root, len(ds.train), ds.test.subjects)
    return data_intro(kind, n_subjects=ds.train.subjects.size, n_trials=len(ds.train),
                      n_test_subjects=ds.test.subjects.size, n_test_trials=len(ds.test), ch_names=ds.ch_names,
                      sfreq=ds.sfreq, n_times=len(ds.times))



def seconds(start: int | None, stop: int | None, times: Sequence[float]) -> str:
    """Samples ``start``-``stop`` (inclusive) as ``"0.400-0.600 s"``; ``"no window"`` when ``start`` is None."""
    if start is None:
        return "no window"
    return f"{float(times[int(start)]):.3f}-{float(times[int(stop)]):.3f} s"


def window_text(score: Mapping, times: Sequence[float]) -> str:
    """The scored window of a :func:`kit.eval.cv.loso_score` dict in s, or "no window above chance"."""
    start, stop = score["window"]
    return "no window above chance" if start is None else seconds(start, stop, times)


def choice_in_seconds(choice: str, sfreq: float) -> str:
    """A feature-set label with its window in samples, ``"alpha-beta @ (0, 200)"`` (stop exclusive), as
    ``"alpha-beta @ 0.000-0.995 s"``; labels without such a window are returned as they are."""
    import re

    def repl(m):
        start, stop = int(m.group(1)), int(m.group(2))
        return f"@ {start / sfreq:.3f}-{(stop - 1) / sfreq:.3f} s"

    return re.sub(r"@ \((\d+), (\d+)\)", repl, str(choice))


def window_clause(score: Mapping, times: Sequence[float]) -> str:
    """``"window 0.000-0.995 s"`` or ``"no window above chance"``, to go in a sentence."""
    text = window_text(score, times)
    return text if score["window"][0] is None else f"window {text}"


def overlap_untrusted(score: Mapping, times: Sequence[float], trusted: tuple[float, float] | None) -> float:
    """Share of the scored window's samples outside ``trusted`` (s), 0 without a window or ``trusted``."""
    start, stop = score["window"]
    if start is None or trusted is None:
        return 0.0
    t = np.asarray(times, float)[int(start): int(stop) + 1]
    return float(((t < trusted[0] - 1e-9) | (t > trusted[1] + 1e-9)).mean())


def data_kind(root: str | os.PathLike, n_train_trials: int, test_subjects: Sequence[int]) -> dict:
    """What a data folder holds, for the notebooks' first sentence.

    Returns
    -------
    dict
        ``kind``: "simulated", "competition" or "other"; ``sleep``: True when the trials are (simulated) NREM
        sleep after memory cues, so that sleep physiology may be named; ``text``: one sentence.
    """
    root = Path(root)
    meta = root / "demo.json"
    if meta.is_file():
        info = json.loads(meta.read_text())
        kind = info.get("kind", "theta")
        return {"kind": "simulated", "sleep": True, "effect_kind": kind,
                "text": (f"simulated sleep EEG (`kit.data.demo`, class effect `{kind}`, scale {info.get('scale')}, "
                         f"seed {info.get('seed')}): trials built to look like the competition's, with a known "
                         "effect, not recordings")}
    if int(n_train_trials) == COMPETITION_TRIALS and tuple(sorted(int(s) for s in test_subjects)) == \
            COMPETITION_TEST_SUBJECTS:
        return {"kind": "competition", "sleep": True, "effect_kind": None,
                "text": "the competition's recordings: NREM-sleep EEG in the 1 s after an emotional or a neutral "
                        "memory cue"}
    return {"kind": "other", "sleep": False, "effect_kind": None,
            "text": (f"`{root.name}`, a folder in the competition's layout that is not the competition's recordings: "
                     "its two classes are whatever its `sleep_emo` and `sleep_neu` folders hold (read "
                     "'emotional' and 'neutral' below as class 1 and class 0)")}


def data_intro(kind: Mapping, *, n_subjects: int, n_trials: int, n_test_subjects: int, n_test_trials: int,
               ch_names: Sequence[str], sfreq: float, n_times: int) -> str:
    """The markdown a notebook opens its run with: which data, how many subjects, trials, channels, samples."""
    return (f"**This run's data**: {kind['text']}. {n_subjects} training subjects ({n_trials:,} labelled trials), "
            f"{n_test_subjects} test subjects ({n_test_trials:,} unlabelled trials); {len(ch_names)} channels "
            f"({' '.join(ch_names)}), {n_times} samples at {sfreq:g} Hz "
            f"({n_times / sfreq:.2f} s after the cue).")


# ----------------------------------------------------------------------------- notebook 05 and kit run
def blend_stability(per_subject: Sequence[Mapping]) -> tuple[list[dict], str]:
    """How much the blend the rule chose moves between held-out subjects.

    Parameters
    ----------
    per_subject : sequence of dict
        :attr:`kit.pipeline.stages.EnsembleResult.per_subject` (``subject``, ``blend`` label as
        ``"0.42 experts + 0.58 thetacov; none"``, ``inner_score``).

    Returns
    -------
    rows : list of dict
        Per component: ``component``, ``held-out subjects with weight > 0``, ``mean weight``, ``min weight``,
        ``max weight`` (0 where a subject's blend left it out), largest mean first.
    sentence : str
        The verdict: the post-processings chosen, and the component whose weight moves most.
    """
    import re

    weights, posts = [], []
    for r in per_subject:
        label = str(r["blend"]).split(" (+")[0]
        body, _, post = label.partition("; ")
        weights.append({name: float(w) for w, name in re.findall(r"([0-9.]+) ([A-Za-z_][\w]*)", body)})
        posts.append(post or "none")
    names = sorted({k for w in weights for k in w})
    rows = []
    for name in names:
        v = np.array([w.get(name, 0.0) for w in weights])
        rows.append({"component": name, "held-out subjects with weight > 0": f"{int((v > 0).sum())}/{len(v)}",
                     "mean weight": round(float(v.mean()), 3), "min weight": round(float(v.min()), 3),
                     "max weight": round(float(v.max()), 3)})
    rows.sort(key=lambda r: -r["mean weight"])
    counts = {p: posts.count(p) for p in dict.fromkeys(posts)}
    post_text = ", ".join(f"{p} for {n}" for p, n in counts.items())
    if rows:
        wide = max(rows, key=lambda r: r["max weight"] - r["min weight"])
        spread = (f"; the weight that moves most is {wide['component']}'s, {wide['min weight']:.2f}-"
                  f"{wide['max weight']:.2f} across the held-out subjects")
    else:
        spread = ""
    return rows, (f"Over {len(per_subject)} held-out subjects the rule chose the post-processing {post_text} "
                  f"subject(s){spread}.")



def _signed(v) -> str:
    return "n/a" if v is None else f"{v:+.4f}"


def ensemble_line(summary: Mapping) -> str:
    """The one line on the submission's blend: components with weights, the ensemble's LOSO with its bootstrap
    interval, and its difference to the best component with its paired bootstrap interval."""
    e, d, b = summary["ensemble"], summary["difference"], summary["best_component"]
    used = sorted((c for c in summary["components"] if c["weight"] > 0), key=lambda c: -c["weight"])
    parts = " + ".join(f"{c['weight']:.2f} {c['name']}" for c in used)
    post = ", ".join(summary.get("post") or [])
    lo, hi = e["ci"]
    diff = (f"{_signed(d['value'])} vs the best component {b['name']} ({b['loso_score']:.4f}), 95 % CI "
            f"[{_signed(d['low'])}, {_signed(d['high'])}]") if d.get("value") is not None else "no comparison"
    how = summary["rule"] + (f", post-processing {post}" if post else "")
    return f"ensemble ({how}) = {parts}: LOSO {e['loso_score']:.4f} [95 % CI {lo:.4f}, {hi:.4f}], {diff}"


def _subject_rows(summary: Mapping) -> list[str]:
    rows = []
    for r in summary.get("test_subjects", []):
        flag = ""
        if r["above_half"] in (0.0, 1.0):
            flag = "  <- every trial on one side of 0.5"
        elif r["sd"] < 1e-3:
            flag = "  <- nearly constant"
        rows.append(f"S{r['subject']}: {r['trials']} trials, mean P(emotional) {r['mean']:.3f} ± {r['sd']:.3f} "
                    f"(SD over trials), {100 * r['above_half']:.0f} % above 0.5{flag}")
    return rows


def summary_text(summary: Mapping) -> str:
    """The run summary as plain text (``kit run``'s closing lines)."""
    e = summary["ensemble"]
    ws = e["window_s"]
    lines = ["=" * 72, "RUN SUMMARY",
             f"submission:      {summary.get('submission') or 'none written (no test trials)'}",
             f"LOSO score:      {e['loso_score']:.4f}  95 % CI [{e['ci'][0]:.4f}, {e['ci'][1]:.4f}] "
             f"(bootstrap over {e['n_subjects']} subjects); window "
             + ("none" if ws is None else f"{ws[0]:.3f}-{ws[1]:.3f} s"),
             f"on 3 test subjects: mean {e['lb_mean']:.4f}, 90 % of 3-subject sets in [{e['lb_p5']:.4f}, "
             f"{e['lb_p95']:.4f}] (the leaderboard has 3 test subjects)",
             f"blend:           {ensemble_line(summary)}",
             "components:      " + ", ".join(f"{c['name']} {c['loso_score']:.4f} (w {c['weight']:.2f})"
                                             if c["loso_score"] is not None else f"{c['name']} (w {c['weight']:.2f})"
                                             for c in summary["components"])]
    if summary.get("test_subjects"):
        lines.append("test subjects:")
        lines += [f"  {r}" for r in _subject_rows(summary)]
    if summary.get("timings"):
        lines.append("wall time:       " + ", ".join(f"{k} {v:.0f} s" for k, v in summary["timings"].items()))
    if summary.get("stage_seconds"):
        lines.append("stage time:      " + ", ".join(f"{k} {v:.0f} s" for k, v in summary["stage_seconds"].items())
                     + " (each stage's compute time; a stage reused from an earlier run keeps its time then)")
    lines.append(f"device:          {summary['device']}, torch threads {summary['torch_threads']}")
    lines.append("=" * 72)
    return "\n".join(lines)


def ensemble_findings(summary: Mapping) -> str:
    """Notebook 05's closing cell (markdown): the blend line, the score with its spread, the per-test-subject
    check, the submission."""
    e, d = summary["ensemble"], summary["difference"]
    lines = ["### What this run found", "", f"**{ensemble_line(summary)}**", ""]
    if d.get("value") is not None:
        if d["low"] > 0:
            verdict = "the ensemble beats the best single component (the interval excludes 0)"
        elif d["high"] < 0:
            verdict = "the ensemble is worse than the best single component (the interval excludes 0)"
        else:
            verdict = ("the ensemble and the best single component cannot be told apart on these subjects (the "
                       "interval holds 0); the best component is chosen with hindsight, the ensemble without")
        lines.append(f"* {verdict}.")
    lines.append(f"* On 3 test subjects (the leaderboard's size) the same predictions would score {e['lb_mean']:.4f} "
                 f"on average, 90 % of the 3-subject sets between {e['lb_p5']:.4f} and {e['lb_p95']:.4f}: "
                 "expect the leaderboard to move by that much by chance.")
    if summary.get("test_subjects"):
        lines.append("* Test subjects (trial-mean predictions): " + "; ".join(_subject_rows(summary)) + ".")
    lines.append(f"* Submission: `{summary.get('submission') or 'none written (no test trials)'}`.")
    return "\n".join(lines)
