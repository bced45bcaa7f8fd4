"""``python -m kit bench`` / ``rules`` / ``null-study``: run the benchmark's computations, print and write the report."""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kit.core.errors import KitError
from kit.core.runtime import thread_limit
from kit.data.demo import KINDS, ensure_data
from kit.eval.stats import N_BOOT
from kit.methods.registry import METHODS
from kit.pipeline.benchmark import (
    NULL_LIMIT,
    NULL_SCALE,
    bench_folder,
    bench_job,
    bench_part,
    bench_parts,
    merge_bench_times,
    null_copy,
)
from kit.pipeline.profiles import check_profile
from kit.pipeline.studies import kind_folders, memory_probe, null_study, rule_study
from kit.report.bench import (
    bench_auc_figure,
    diagnostic_table,
    folder_table,
    kind_table,
    memory_line,
    rule_table,
    summary_json,
    write_report,
)
from kit.store.artifacts import atomic_write
from kit.store.paths import output_root

BACKENDS = ("loky", "dask", "ray")
"""joblib backends ``kit bench`` spreads its tasks with: loky (processes on this machine), dask (a Dask
distributed cluster), ray (a Ray cluster)."""


@contextmanager
def parallel_backend(backend: str = "loky", *, scheduler: str | None = None, jobs: int = 1):
    """joblib's backend for the block: ``loky`` with ``jobs`` processes, a Dask or a Ray cluster.

    Parameters
    ----------
    backend : {"loky", "dask", "ray"}
    scheduler : str, optional
        dask: the address of a running scheduler (``tcp://host:8786``); without it a
        :class:`distributed.LocalCluster` of ``jobs`` single-threaded worker processes runs for the block.
        ray: the address of a running Ray cluster (``ray://host:10001`` or ``auto``); without it a local one.
    jobs : int
        loky: processes; dask without a scheduler: local workers.  A running cluster uses all its workers.

    Raises
    ------
    KitError
        Unknown backend, its package missing (``pip install .[dask]`` / ``.[ray]``), no scheduler at the address.
    """
    import joblib

    jobs = max(int(jobs), 1)
    if backend == "loky":
        with joblib.parallel_config(backend="loky", n_jobs=jobs):
            yield
        return
    if backend == "dask":
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise KitError("--backend dask: the dask distributed package is not installed "
                           "(pip install '.[dask]' or pip install 'dask[distributed]')") from exc
        cluster = None
        try:
            if scheduler:
                client = Client(scheduler, timeout="20s")
            else:
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
                client = Client(cluster)
        except (OSError, TimeoutError) as exc:
            if cluster is not None:
                cluster.close()
            raise KitError(f"--backend dask: no Dask scheduler at {scheduler or 'a local cluster'} "
                           f"({type(exc).__name__}: {exc})") from exc
        try:
            with joblib.parallel_config(backend="dask", n_jobs=-1):
                yield
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        return
    if backend == "ray":
        try:
            import ray
            from ray.util.joblib import register_ray
        except ImportError as exc:
            raise KitError("--backend ray: ray is not installed (pip install '.[ray]')") from exc
        register_ray()
        started = not ray.is_initialized()
        if started:
            ray.init(address=scheduler, **({} if scheduler else {"num_cpus": jobs}))
        try:
            with joblib.parallel_config(backend="ray", n_jobs=-1):
                yield
        finally:
            if started:
                ray.shutdown()
        return
    raise KitError(f"--backend {backend}: unknown; choose from {', '.join(BACKENDS)}")


def parallel_bench(tasks, profile: str, *, methods=tuple(METHODS), n_boot: int = N_BOOT, seed: int = 0,
                   threads: int = 1, verbose: bool = False) -> list:
    """Bench folders through joblib's current backend (:func:`parallel_backend`): folders x method parts.

    First every part of every folder (:func:`kit.pipeline.benchmark.bench_parts`: each anchor alone,
    the deep stages together) is computed as one task, the null copies' and EEGNet's parts first (the
    longest); their compute times are merged into each folder's ``bench_times.json``; then one task per
    folder scores every method on the stored predictions and fits the ensemble
    (:func:`kit.pipeline.benchmark.bench_folder`, every stage read back).  Tasks name absolute paths,
    so the workers must see the data folders and the output root at the same paths.

    Parameters
    ----------
    tasks : list of (Path, bool)
        Data folder and whether it is a null copy.
    profile, methods, n_boot, seed, threads, verbose
        As :func:`run_bench`.

    Returns
    -------
    list of FolderResult
        In ``tasks`` order.
    """
    from joblib import Parallel, delayed

    from kit.pipeline.run import data_tag

    root = output_root()
    arts = {folder: root / "artifacts" / data_tag(Path(folder)) for folder, _ in tasks}
    parts = [(folder, part) for folder, is_null in tasks for part in bench_parts(methods)]
    longest = {"eegnet", "eegnet_ea", "experts", "mae", "fusion"}
    null = {folder for folder, is_null in tasks if is_null}
    parts.sort(key=lambda fp: (fp[0] not in null, not longest & set(fp[1])))
    times = Parallel()(delayed(bench_part)(folder, profile, part, artifacts=arts[folder], threads=threads,
                                           verbose=verbose, output=str(root)) for folder, part in parts)
    for folder, _ in tasks:
        merge_bench_times(arts[folder], {k: v for (f, _), t in zip(parts, times) if f == folder for k, v in t.items()})
    return Parallel()(delayed(bench_job)(folder, profile, methods, n_boot, seed, is_null, verbose, threads,
                                         artifacts=arts[folder], output=str(root)) for folder, is_null in tasks)


def run_bench(data=None, *, profile: str = "quick", out: str | os.PathLike | None = None, null: bool | None = None,
              memory: bool = False, methods=tuple(METHODS), n_boot: int = N_BOOT, seed: int = 0, threads: int = 1,
              verbose: bool = True, command: str = "python -m kit bench", null_scale: float | None = NULL_SCALE,
              jobs: int = 1, backend: str = "loky", scheduler: str | None = None) -> dict:
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
        Tasks at once with the ``loky`` backend (processes on this machine, each with ``threads``
        threads; 2 on a 2-core machine), or the workers of a local Dask cluster.  Above 1, or with another
        backend, the folders x method parts run as joblib tasks (:func:`parallel_bench`).
    backend : {"loky", "dask", "ray"}
        joblib backend of the tasks (:func:`parallel_backend`).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) or Ray cluster; the data folders and
        the output root (``$KIT_OUTPUT``) must be on storage every worker sees, at the same paths.

    Returns
    -------
    dict
        :func:`summary_json`.

    Raises
    ------
    KitError
        Unknown profile or method, a bad data folder, any stage's error.
    """

    check_profile(profile)
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
    if backend not in BACKENDS:
        raise KitError(f"--backend {backend}: unknown; choose from {', '.join(BACKENDS)}")
    if jobs > 1 or backend != "loky" or scheduler:
        with parallel_backend(backend, scheduler=scheduler, jobs=jobs):
            results = parallel_bench(tasks, profile, methods=methods, n_boot=n_boot, seed=seed, threads=threads,
                                     verbose=verbose)
    else:
        with thread_limit(threads):
            results = [bench_folder(folder, profile, methods=methods, n_boot=n_boot, seed=seed, null=is_null,
                                    verbose=verbose) for folder, is_null in tasks]
    for res in results:
        bench_auc_figure(res, out.parent / "figures")
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
    if args.backend != "loky":
        argv += ["--backend", args.backend]
    if args.scheduler:
        argv += ["--scheduler", args.scheduler]
    summary = run_bench(args.data, profile=args.profile, out=args.out, null=args.null, memory=args.memory,
                        methods=tuple(args.methods) if args.methods else tuple(METHODS), n_boot=args.n_boot,
                        threads=args.threads, command=" ".join(argv), null_scale=args.null_scale or None,
                        jobs=args.jobs, backend=args.backend, scheduler=args.scheduler)
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
