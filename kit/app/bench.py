"""``python -m kit bench`` / ``rules`` / ``null-study``: run the benchmark's computations, print and write the report."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from kit.core.errors import KitError
from kit.core.runtime import thread_limit
from kit.data.demo import KINDS, ensure_data
from kit.eval.stats import N_BOOT
from kit.methods.registry import METHODS
from kit.pipeline.benchmark import (NULL_LIMIT, NULL_SCALE, bench_folder, bench_job, kind_folders, memory_probe,
                                    null_copy, null_study, rule_study)
from kit.pipeline.profiles import PROFILES
from kit.report.bench import (diagnostic_table, folder_table, kind_table, memory_line, rule_table, save_figure,
                              summary_json, write_report)
from kit.store.artifacts import atomic_write
from kit.store.paths import output_root


def run_bench(data=None, *, profile: str = "quick", out: str | os.PathLike | None = None, null: bool | None = None,
              memory: bool = False, methods=tuple(METHODS), n_boot: int = N_BOOT, seed: int = 0, threads: int = 1,
              verbose: bool = True, command: str = "python -m kit bench", null_scale: float | None = NULL_SCALE,
              jobs: int = 1) -> dict:
    """The whole bench: every folder (and the null copy of a demo folder), the report, the figure.

    Parameters
    ----------
    data : path or list of paths, optional
        Data folders; default :func:`kit.data.demo.ensure_data` (the demo data without others).
    profile : str
        ``quick``, ``full`` or ``smoke`` (:data:`kit.pipeline.profiles.PROFILES`).
    out : path, optional
        Report path; default ``{output_root}/reports/bench.md``.  Figures go to ``figures/`` beside it.
    null : bool or None
        None: bench a null copy of every demo folder benched; True: also of
        the default demo data when none was benched; False: no null copy.
    memory : bool
        Add the full-scale memory probe (:func:`memory_probe`).
    threads : int
        Threads per numeric library during the bench (0: the libraries' defaults).
    null_scale : float or None
        Size of the null copy (:func:`null_copy`); None = the benched folder's.
    jobs : int
        Folders benched at once, each in its own process with ``threads``
        threads (2 on a 2-core machine: the null copy beside the others).

    Returns
    -------
    dict
        :func:`summary_json`.

    Raises
    ------
    KitError
        Unknown profile or method, a bad data folder, any stage's error.
    """

    if profile not in PROFILES:
        raise KitError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    t0 = time.perf_counter()
    folders = [ensure_data(d) for d in (data if isinstance(data, (list, tuple)) else [data])] if data else \
        [ensure_data(None)]
    tasks = [(f, False) for f in folders]
    if null is not False:
        where = output_root() / "bench"
        copies = [c for c in (null_copy(f, where, null_scale) for f in folders) if c is not None]
        if not copies and null:
            copies = [c for c in [null_copy(ensure_data(None), where, null_scale)] if c is not None]
        tasks += [(c, True) for c in copies]
    out = Path(out) if out else output_root() / "reports" / "bench.md"
    results = []
    if jobs > 1 and len(tasks) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # the (big) null copies first, so that the other folders run beside them
        order = sorted(range(len(tasks)), key=lambda i: not tasks[i][1])
        with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {i: pool.submit(bench_job, tasks[i][0], profile, methods, n_boot, seed, tasks[i][1], verbose,
                                      threads) for i in order}
            results = [futures[i].result() for i in range(len(tasks))]
    else:
        with thread_limit(threads):
            results = [bench_folder(folder, profile, methods=methods, n_boot=n_boot, seed=seed, null=is_null,
                                    verbose=verbose) for folder, is_null in tasks]
    for res in results:
        save_figure(res, out.parent / "figures")
        print(folder_table(res), flush=True)
    mem = None
    if memory:
        mem = memory_probe(1.0)
        print(memory_line(mem), flush=True)
    wall = time.perf_counter() - t0
    report = write_report(out, results, profile=profile, command=command, threads=threads, memory=mem, wall=wall)
    print(f"report: {report}", flush=True)
    return summary_json(results, wall=wall, report=report, memory=mem)


def bench_command(args) -> int:
    """``python -m kit bench``: run :func:`run_bench` from parsed arguments; the last printed line is JSON.

    Returns
    -------
    int
        0.
    """
    argv = ["python -m kit bench"]
    if args.data:
        argv += ["--data", *map(str, args.data)]
    argv += ["--profile", args.profile]
    for flag, value in (("--methods", args.methods), ("--out", args.out)):
        if value:
            argv += [flag, *([value] if isinstance(value, str) else value)]
    if args.null is not None:
        argv.append("--null" if args.null else "--no-null")
    if args.memory:
        argv.append("--memory")
    if args.null_scale != NULL_SCALE:
        argv += ["--null-scale", f"{args.null_scale:g}"]
    if args.jobs != 1:
        argv += ["--jobs", str(args.jobs)]
    summary = run_bench(args.data, profile=args.profile, out=args.out, null=args.null, memory=args.memory,
                        methods=tuple(args.methods) if args.methods else tuple(METHODS), n_boot=args.n_boot,
                        threads=args.threads, command=" ".join(argv), null_scale=args.null_scale or None,
                        jobs=args.jobs)
    print(json.dumps(summary, sort_keys=True))
    return 0


def rules_command(args) -> int:
    """``python -m kit rules``: every ensemble rule on every folder; prints the tables, then JSON.

    With ``--kinds`` the simulator's folders of those kinds and seeds (:func:`kind_folders`) join the given
    folders; with ``--compute`` (the default with ``--kinds``) every component is computed first (the bench's
    stages, cached), EEGNet and the deep stages included.
    """

    folders = [ensure_data(d) for d in (args.data or ([] if args.kinds else [None]))]
    if args.kinds:
        kinds = [k for k in KINDS if k != "theta"] if args.kinds == ["all"] else args.kinds
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise KitError(f"--kinds {' '.join(unknown)}: unknown; choose from all, {', '.join(KINDS)}")
        folders += kind_folders(kinds, args.seeds)
    if args.compute if args.compute is not None else bool(args.kinds):
        with thread_limit(args.threads):
            for f in folders:
                bench_folder(f, args.profile, methods=("ensemble",), verbose=False)
    if args.null:
        where = Path(tempfile.gettempdir()) / "kit-rules"
        for f in list(folders):
            copy = null_copy(f, f.parent if os.access(f.parent, os.W_OK) else where, scale=None)
            if copy is not None:
                folders.append(copy)
    with thread_limit(args.threads):
        rows = rule_study(folders, profile=args.profile)
    text = (rule_table(rows) + "\n## Per kind (mean over its folders)\n\n" + kind_table(rows)
            + "\n## Are the cross-fitted tables honest? (mean per-subject AUC of the trial mean)\n\n"
            + diagnostic_table(rows))
    print(text)
    if args.out:
        with atomic_write(Path(args.out), "w") as fh:
            fh.write("# Ensemble rules against the best single component (nested LOSO)\n\n" + text)
    print(json.dumps(rows))
    return 0


def null_study_command(args) -> int:
    """``python -m kit null-study``: per-seed table, then the means, then a JSON line."""
    with thread_limit(args.threads):
        rows = null_study(args.seeds, scale=args.scale)
    keys = [k for k in rows[0] if k != "seed"]
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    higher = sum(r["nested"] > r["crossfit"] for r in rows)
    above = {k: sum(r[k] > NULL_LIMIT for r in rows) for k in keys}
    print("mean over seeds: " + ", ".join(f"{k} {v:.4f}" for k, v in means.items()))
    print(f"nested > crossfit on {higher} of {len(rows)} seeds; mean difference "
          f"{means['nested'] - means['crossfit']:+.4f}; seeds above {NULL_LIMIT}: {above}")
    print(json.dumps({"rows": rows, "means": means, "nested_higher": higher, "above_limit": above}))
    return 0
