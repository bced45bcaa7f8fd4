"""The benchmark's report: markdown tables per data folder, the rule table, the memory line, the figure, the JSON summary.

The numbers come from :mod:`kit.pipeline.benchmark`; ``python -m kit bench``
(:mod:`kit.app.bench`) writes them to ``reports/bench.md``.
"""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from kit.methods.registry import ANCHORS, METHODS
from kit.pipeline.benchmark import NULL_LIMIT, FolderResult
from kit.pipeline.ensemble import RULES
from kit.report.plots import plot_auc_timecourse
from kit.store.artifacts import atomic_write

# ----------------------------------------------------------------------------- ensemble rules


def rule_table(rows: list[dict]) -> str:
    """Markdown table of :func:`rule_study`: rule - best component per folder, the worst case per rule."""

    lines = ["| folder | components | best component | " + " | ".join(RULES) + " | default - best, 95 % CI |",
             "|---|---|---|" + "---|" * len(RULES) + "---|"]
    for r in rows:
        ci = r.get("default_ci")
        lines.append(f"| {r['folder']} | {len(r['components'])} | {r['best_component']} {r['best_score']:.4f} | "
                     + " | ".join(f"{r[k]:.4f} ({r['diff_' + k]:+.4f})" for k in RULES)
                     + (f" | [{ci[0]:+.4f}, {ci[1]:+.4f}] |" if ci else " | |"))
    worst = {k: min(r["diff_" + k] for r in rows) for k in RULES}
    lines.append("| **worst difference** | | | " + " | ".join(f"**{worst[k]:+.4f}**" for k in RULES) + " | |")
    keep = max(worst, key=worst.get)
    lines += ["", f"Rule with the least negative worst case: **{keep}** ({worst[keep]:+.4f})."]
    return "\n".join(lines) + "\n"


def kind_table(rows: list[dict]) -> str:
    """Markdown table: per effect kind, each rule's difference to the best component, mean over the kind's folders."""
    kinds: dict[str, list[dict]] = {}
    for r in rows:
        if ":" not in r["folder"]:  # the single-signal tables are not a kind
            kinds.setdefault(r.get("kind", "real"), []).append(r)
    lines = ["| kind | folders | best component (mean) | " + " | ".join(RULES) + " |",
             "|---|---|---|" + "---|" * len(RULES)]
    for kind, rs in kinds.items():
        best = np.mean([r["best_score"] for r in rs])
        lines.append(f"| {kind} | {len(rs)} | {best:.4f} | "
                     + " | ".join(f"{np.mean([r[k] for r in rs]):.4f} ({np.mean([r['diff_' + k] for r in rs]):+.4f})"
                                  for k in RULES) + " |")
    return "\n".join(lines) + "\n"


def diagnostic_table(rows: list[dict]) -> str:
    """Markdown table: per folder and component, LOSO vs cross-fitted (own / served) mean per-subject AUC."""
    lines = ["| folder | component | LOSO | own table | served | served - LOSO |", "|---|---|---|---|---|---|"]
    for r in rows:
        if ":" in r["folder"]:
            continue
        for comp, d in r.get("diagnostic", {}).items():
            lines.append(f"| {r['folder']} | {comp} | {d['loso']:.4f} | {d['own']:.4f} | {d['served']:.4f} | "
                         f"{d['optimism']:+.4f} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- memory


def memory_line(m: dict) -> str:
    """One line for the memory section."""
    return (f"load + deep features at scale {m['scale']:g} ({m['n_trials']:,} trials): peak RSS "
            f"{m['peak_rss_gib']:.2f} GiB (ru_maxrss; {m['rss_after_imports_kib'] / 2**20:.2f} GiB after imports, "
            f"{m['rss_after_load_kib'] / 2**20:.2f} GiB after loading), tracemalloc peak "
            f"{m['tracemalloc_peak_bytes'] / 2**30:.2f} GiB; X {m['X_bytes'] / 2**20:.0f} MiB, features "
            f"{m['features_bytes'] / 2**20:.0f} MiB; load {m['load_s']:.1f} s, features {m['features_s']:.1f} s "
            f"(target < 4 GiB: {'met' if m['peak_rss_gib'] < 4 else 'MISSED'})")


# ----------------------------------------------------------------------------- report
def _fmt_window(w, times) -> str:
    if w is None or w[0] is None:
        return "none"
    return f"{times[w[0]]:.3f}-{times[w[1]]:.3f} s"


def _shown(path) -> str:
    """``path`` relative to the working folder when it lies below it (reports stay machine-independent)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def folder_table(res: FolderResult) -> str:
    """The markdown table of one folder (one row per method), with notes below it."""
    sim = ""
    if res.simulated:
        p = res.simulated
        sim = (f" Simulated by `kit.data.demo` (scale {p['scale']}, seed {p['seed']}, effect {p['effect']}): "
               f"`python -m kit demo-data DIR --scale {p['scale']} --seed {p['seed']} --effect {p['effect']}`.")
    n_cached = sum(bool(v) for v in res.cached.values())
    wall = f"Wall time {res.total_seconds:.0f} s" + (
        f" (this run; {n_cached} stages reused from artifacts, their rows show the time they took to compute)"
        if n_cached else "")
    lines = [f"### {res.tag}{' (NULL: no emotional effect)' if res.null else ''}", "",
             f"`{_shown(res.data)}`: {res.n_subjects} training subjects, {res.n_trials:,} trials, LOSO "
             f"({res.n_subjects} folds, the same for every method).{sim} {wall}.", "",
             "| method | LOSO score | window | mean subject AUC | 95 % CI (bootstrap over subjects) | "
             "3-subject LB: mean [p5, p95] | wall (s) |",
             "|---|---|---|---|---|---|---|"]
    times = res.times if res.times is not None else np.arange(200) / 200.0
    for name, r in res.rows.items():
        flag = " **> 0.53: leak?**" if res.null and r["loso_score"] > NULL_LIMIT else ""
        wall = f"{res.seconds.get(name, 0.0):.0f}" + (" (cached)" if res.cached.get(name) else "")
        lines.append(f"| {name} | {r['loso_score']:.4f}{flag} | {_fmt_window(r['window'], times)} | "
                     f"{r['mean_auc']:.4f} | [{r['ci'][0]:.4f}, {r['ci'][1]:.4f}] | "
                     f"{r['lb_mean']:.4f} [{r['lb_p5']:.4f}, {r['lb_p95']:.4f}] | {wall} |")
    lines.append("")
    anchors = {k: v["loso_score"] for k, v in res.rows.items() if k in ANCHORS}
    if anchors:
        best = max(anchors, key=anchors.get)
        note = f"Best anchor: **{best}** ({anchors[best]:.4f})."
        if "ensemble" in res.rows and not res.null:  # on null data there is nothing to beat
            d = res.rows["ensemble"]["loso_score"] - anchors[best]
            note += (f" Ensemble {'+' if d >= 0 else '-'}{abs(d):.4f} vs the best anchor "
                     f"({'meets' if d >= 0.01 else 'misses'} the +0.01 target).")
        lines.append(note)
    if "mae" in res.seconds:
        lines.append(f"MAE pretraining: {res.seconds['mae']:.0f} s" + (" (cached)" if res.cached.get("mae") else "")
                     + "; its time is not in the experts' rows.")
    if res.ensemble_blend:
        lines.append(f"Ensemble blend chosen on all subjects: {res.ensemble_blend}.")
    lines.extend(ensemble_lines(res.ensemble_info))
    if res.null:
        over = [k for k, v in res.rows.items() if v["loso_score"] > NULL_LIMIT]
        lines.append(f"NULL check (every method <= {NULL_LIMIT}): "
                     + ("passed." if not over else f"FAILED for {', '.join(over)}."))
    return "\n".join(lines) + "\n"


def ensemble_lines(info: dict) -> list[str]:
    """Report lines of the ensemble stage's ``result.json``: the difference to the best component, every rule."""
    if not info.get("difference"):
        return []
    d, lo, hi = info["difference"]
    out = [f"Ensemble (rule `{info['rule']}`) - best component (`{info['best_component']}`): {d:+.4f} "
           f"[{lo:+.4f}, {hi:+.4f}] (paired bootstrap over subjects, 95 %)."]
    if info.get("rules"):
        out.append("Ensemble LOSO by rule: " + ", ".join(f"{k} {v:.4f}" for k, v in info["rules"].items()) + ".")
    return out


def write_report(path: Path, results: list[FolderResult], *, profile: str, command: str, threads: int,
                 memory: dict | None, wall: float) -> Path:
    """Write ``bench.md``: a header, one table per folder, the memory line."""
    head = [
        "# Benchmark: anchors and kit stages, leave-one-subject-out",
        "",
        f"Made by `{command}` (profile `{profile}`) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"{'library-default' if threads <= 0 else threads} thread(s) per library; total wall time {wall:.0f} s.",
        "",
        "Columns: **LOSO score** = the competition's window metric over the held-out subjects' out-of-fold "
        "predictions; **window** = the run of samples it scored; **mean subject AUC** = per-sample AUC averaged "
        "over samples and subjects; **95 % CI** = percentile bootstrap over subjects (2,000 resamples, window "
        "recomputed each time); **3-subject LB** = the metric over every 3-subject subset of the held-out "
        "subjects (the real test set has 3), its mean and 5th/95th percentiles. Methods (`kit.methods.registry`): "
        + "; ".join(f"`{m.name}` ({m.summary})" for m in METHODS.values() if any(m.name in r.rows for r in results))
        + ". The ensemble's LOSO is nested: each held-out subject's blend is chosen on cross-fitted predictions of "
        "models that never saw it.",
        "",
    ]
    body = [folder_table(r) for r in results]
    figs = [f"![AUC time courses, {r.tag}](figures/bench_auc_{r.tag}.png)" for r in results]
    tail = ["## Memory", "", memory_line(memory) if memory else "not measured (run with `--memory`).", ""]
    text = "\n".join(head) + "\n## Results\n\n" + "\n".join(body) + "\n" + "\n".join(figs) + "\n\n" + "\n".join(tail)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as fh:
        fh.write(text)
    return path


def bench_auc_figure(res: FolderResult, folder: Path) -> Path:
    """``bench_auc_<tag>.png`` (and ``.pdf``): every method's AUC time course with its scored window, drawn by
    :func:`kit.report.plots.plot_auc_timecourse` and written by :func:`kit.report.common.save_figure`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curves = {k: np.array(v["curve"]) for k, v in res.rows.items()}
    windows = {k: tuple(v["window"]) for k, v in res.rows.items()}
    fig = plot_auc_timecourse(curves, res.times, window=windows, save_dir=folder, name=f"bench_auc_{res.tag}",
                              title=f"LOSO AUC over time, {res.tag}" + (" (null)" if res.null else ""))
    plt.close(fig)
    return Path(folder) / f"bench_auc_{res.tag}.png"


def summary_json(results: list[FolderResult], *, wall: float, report: Path, memory: dict | None) -> dict:
    """The JSON summary printed as the bench's last line."""
    out = {"report": str(report), "wall_s": round(wall, 1), "folders": {}}
    for r in results:
        out["folders"][r.tag] = {
            "data": str(r.data), "null": r.null, "wall_s": round(r.total_seconds, 1),
            "methods": {k: {"loso_score": round(v["loso_score"], 4), "window": v["window"],
                            "mean_auc": round(v["mean_auc"], 4),
                            "ci": [round(c, 4) for c in v["ci"]], "lb_mean": round(v["lb_mean"], 4),
                            "lb_p5": round(v["lb_p5"], 4), "lb_p95": round(v["lb_p95"], 4),
                            "seconds": round(r.seconds.get(k, 0.0), 1)} for k, v in r.rows.items()},
        }
    if memory:
        out["memory"] = {"peak_rss_gib": round(memory["peak_rss_gib"], 3), "scale": memory["scale"],
                         "n_trials": memory["n_trials"]}
    return out
