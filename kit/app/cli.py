"""``python -m kit``: the command line of the kit.

Subcommands::

    demo-data OUT [--scale S] [--seed N] [--effect E] [--kind KIND] [--overwrite]   simulate a dataset
    inspect PATH                                                        describe a .mat file or a data folder
    run [--data DIR] [--profile quick|full]                             execute notebooks 01-05
    cv [--data DIR] --method NAME [--profile quick|full]                LOSO score of one method
    bench [--data DIR ...] [--profile P] [--out MD] [--memory]          every anchor and stage side by side
    profile-stages [--data DIR] [--stages ...] [--out JSON]             each stage's time and memory, the critical path
    validate SUBMISSION [--data DIR]                                    check a submission file
    score SUBMISSION --labels CSV                                       window-AUC of a submission
    submit SUBMISSION -m MESSAGE [--data DIR] [--dry-run]               validate, then upload to Kaggle (its API)
    kaggle-kernel [NOTEBOOK] OUT [--user U] [--gpu] [--kit-dataset U/S]  a push-ready Kaggle kernel folder
    kaggle-dataset OUT [--user U] [--slug S]                            the kit as a Kaggle dataset (a wheel)

A :class:`kit.core.errors.KitError` (and an OS error on a user's path) prints one
line ``error: <message>`` on stderr and exits with status 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from kit import COMPETITION, __version__
from kit.core.errors import KitError



def _fmt_window(window) -> str:
    """``samples a-b (n samples, t0-t1 s)``; times at the competition's 200 Hz, cue at 0 s."""
    from kit.data.layout import SFREQ

    if window is None or window[0] is None:
        return "no window above chance (score 0.5)"
    start, stop = int(window[0]), int(window[1])
    return f"samples {start}-{stop} ({stop - start + 1} samples, {start / SFREQ:.3f}-{stop / SFREQ:.3f} s)"


def _jsonable(obj):
    """Numpy scalars/arrays and non-string keys to plain JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ----------------------------------------------------------------------------- demo-data
def cmd_demo_data(args: argparse.Namespace) -> int:
    from kit.data.demo import DEFAULT_SCALE, write_demo_dataset

    scale = DEFAULT_SCALE if args.scale is None else args.scale
    out = Path(args.out).expanduser()
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise KitError(f"{out}: already exists and is not empty; pass --overwrite to replace it")
    out = write_demo_dataset(out, scale=scale, seed=args.seed, effect=args.effect, overwrite=args.overwrite,
                             kind=args.kind)
    print(f"demo dataset (kind {args.kind}, scale {scale}, seed {args.seed}, effect {args.effect}) written to {out}")
    return 0


# ----------------------------------------------------------------------------- inspect
def cmd_inspect(args: argparse.Namespace) -> int:
    from kit.app import describe

    path = Path(args.path).expanduser()
    if path.is_dir():
        describe.describe_folder(path)
    elif path.is_file():
        describe.describe_mat(path)
    else:
        raise KitError(f"{path}: no such file or folder")
    return 0


# ----------------------------------------------------------------------------- run
def _print_run_result(result_json: Path) -> None:
    """Print the LOSO table, the blend and the submission that notebook 05 stored in ``result_json``."""
    import pandas as pd

    result = json.loads(result_json.read_text())
    print("LOSO scores (window metric over held-out training subjects):")
    table = pd.DataFrame(result["table"])
    print(table[["method", "loso_score", "window", "mean_auc"]].to_string(index=False))
    print(f"ensemble: {result['blend']}")
    print(f"submission: {result['submission']}" if result.get("submission")
          else "submission: none written (the data folder has no test trials)")


def cmd_run(args: argparse.Namespace) -> int:
    from kit.app.runner import NOTEBOOKS, run_notebooks
    from kit.data.demo import ensure_data
    from kit.pipeline.run import data_tag
    from kit.store.paths import output_root

    start = time.time()
    names = args.notebooks or NOTEBOOKS
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        raise KitError(f"unknown notebooks {unknown}; the series is {list(NOTEBOOKS)}")
    data = ensure_data(args.data)  # resolved once: the notebooks and the result below use the same folder
    runs = run_notebooks(names, data=str(data), profile=args.profile, timeout=args.timeout)
    total = time.time() - start
    for run in runs:
        print(f"  {run.name:22} {run.seconds:7.1f} s  {run.output}")
    if NOTEBOOKS[-1] in names:  # written by kit.pipeline.stages.run_ensemble_stage in notebook 05, just now
        _print_run_result(output_root() / "artifacts" / data_tag(data) / "ensemble" / "result.json")
    print(f"total wall time: {total:.1f} s")
    return 0


# ----------------------------------------------------------------------------- cv
def cv_result(method: str, data: str | None, profile: str) -> dict:
    """LOSO result of ``method`` as a dict (the same for classical and deep methods).

    Returns
    -------
    dict
        At least ``method``, ``loso_score``, ``window`` ([first, last] sample
        or [None, None]), ``per_subject_auc`` and ``mean_auc``.
    """
    from kit.pipeline.profiles import PROFILES
    from kit.pipeline.stages import cv_method

    if profile not in PROFILES:
        raise KitError(f"profile {profile!r}: expected one of {sorted(PROFILES)}")
    out = dict(cv_method(method, data=data, profile=profile))
    out["method"] = method
    return out


def cmd_cv(args: argparse.Namespace) -> int:
    start = time.time()
    res = cv_result(args.method, args.data, args.profile)
    window = res.get("window") or [None, None]
    per_subject = res.get("per_subject_auc", {})
    print(f"{args.method}: LOSO window-AUC {res['loso_score']:.4f} over {_fmt_window(window)}")
    for sid, auc in per_subject.items():
        print(f"  subject {sid}: mean AUC {auc:.4f}")
    if "mean_auc" in res:
        print(f"  mean AUC over samples and subjects {res['mean_auc']:.4f}")
    summary = {k: v for k, v in res.items() if k not in ("curve", "oof", "test")}
    summary.update(method=args.method, profile=args.profile, window=list(window),
                   per_subject_auc=per_subject, seconds=round(time.time() - start, 2))
    print(json.dumps(_jsonable(summary), sort_keys=True))
    return 0


# ----------------------------------------------------------------------------- bench
def cmd_bench(args: argparse.Namespace) -> int:
    from kit.app.bench import bench_command

    return bench_command(args)


def cmd_profile_stages(args: argparse.Namespace) -> int:
    """``python -m kit profile-stages``: each stage's wall time and peak memory, the critical path; last line JSON."""
    from kit.app.runner import PREFETCH
    from kit.data.demo import ensure_data
    from kit.pipeline.timing import STAGES, format_profile, profile_stages

    background = PREFETCH["05_ensembling"]
    result = profile_stages(ensure_data(args.data), profile=args.profile, stages=args.stages or STAGES,
                            out_root=args.out_root, keep=args.keep)
    text = format_profile(result, background)
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_json(), indent=1))
    print(json.dumps(result.to_json(), sort_keys=True))
    return 0


def cmd_rules(args) -> int:
    from kit.app.bench import rules_command

    return rules_command(args)


def cmd_null_study(args: argparse.Namespace) -> int:
    from kit.app.bench import null_study_command

    return null_study_command(args)


# ----------------------------------------------------------------------------- validate / score / submit
def _validate(submission: str, data: str | None) -> tuple[int, int]:
    from kit.data.dataset import load_dataset
    from kit.pipeline.submission import validate_submission

    ds = load_dataset(data, splits=("test",))
    validate_submission(submission, subject=ds.subject, trial=ds.trial, n_times=ds.X.shape[2])
    return len(ds) * ds.X.shape[2], len(ds)


def cmd_validate(args: argparse.Namespace) -> int:
    rows, trials = _validate(args.submission, args.data)
    print(f"OK: {rows} rows, {trials} test trials")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from kit.pipeline.predict import predict_folder

    t0 = time.perf_counter()
    path = predict_folder(args.data, args.artifacts, out=args.out)
    print(f"{path}: valid submission from the saved models, in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from kit.pipeline.submission import score_submission

    res = score_submission(args.submission, args.labels)
    window = [res.start, res.stop]
    print(f"score {res.score:.4f} over {_fmt_window(window)}")
    print(json.dumps(_jsonable({"score": res.score, "window": window,
                                "per_subject_auc": res.per_subject_auc}), sort_keys=True))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Validate, check the Kaggle credentials, then upload with ``kaggle``'s API (:func:`kit.app.kaggle.submit`)."""
    from kit.app import kaggle

    rows, trials = _validate(args.submission, args.data)
    print(f"OK: {rows} rows, {trials} test trials")
    if args.dry_run:
        try:
            creds = kaggle.find_credentials()
            found = f"credentials: {creds.source}" + (f" (user {creds.username})" if creds.username else "")
        except KitError as exc:
            found = f"credentials: none usable ({exc})"
        print(f"would run: kaggle competitions submit -c {COMPETITION} -f {args.submission} -m {args.message!r} "
              "(through the kaggle package's API)")
        print(found)
        return 0
    reply = kaggle.submit(args.submission, args.message, competition=COMPETITION)
    print(f"submitted {args.submission} to {COMPETITION}" + (f": {reply}" if reply else ""))
    print(f"see https://www.kaggle.com/competitions/{COMPETITION}/submissions")
    return 0


# ----------------------------------------------------------------------------- kaggle-kernel / kaggle-dataset
def cmd_kaggle_kernel(args: argparse.Namespace) -> int:
    from kit.app import kaggle

    out = kaggle.build_kernel(args.out, args.notebook, user=args.user, title=args.title, profile=args.profile,
                              gpu=args.gpu, kit_dataset=args.kit_dataset, private=not args.public)
    print("\n".join(kaggle.kernel_summary(out)))
    return 0


def cmd_kaggle_dataset(args: argparse.Namespace) -> int:
    from kit.app import kaggle

    out = kaggle.build_dataset(args.out, user=args.user, slug=args.slug, title=args.title)
    meta = json.loads((out / "dataset-metadata.json").read_text())
    wheel = next(out.glob("*.whl"))
    print(f"dataset folder {out}: {wheel.name} ({wheel.stat().st_size / 1024:.0f} KiB), dataset-metadata.json")
    print(f"  id {meta['id']}; create: kaggle datasets create -p {out}  "
          f"(update: kaggle datasets version -p {out} -m \"kit {__version__}\")")
    print(f"  then: python -m kit kaggle-kernel OUT --kit-dataset {meta['id']}")
    return 0


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m kit``."""
    p = argparse.ArgumentParser(prog="python -m kit", description="Emotion decoding from NREM-sleep EEG: "
                                "data, validation, notebooks and submissions.")
    p.add_argument("--version", action="version", version=f"kit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("demo-data", help="write a simulated dataset in the competition layout")
    s.add_argument("out", help="folder to create")
    s.add_argument("--scale", type=float, default=None, help="fraction of the real trial counts (default: demo default)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--effect", type=float, default=1.0, help="size of the emotional effect; 0 = null data")
    from kit.data.demo import KINDS as DEMO_KINDS  # the simulator's kinds of class effect
    s.add_argument("--kind", choices=DEMO_KINDS, default="theta",
                   help="what differs between the classes (kit.data.demo docstring; default: theta)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    s.set_defaults(func=cmd_demo_data)

    s = sub.add_parser("inspect", help="describe a .mat file or a data folder")
    s.add_argument("path")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("run", help="execute the notebooks 01-05 in order (executed copies in reports/runs/)")
    s.add_argument("--data", default=None, help="data folder (default: $KIT_DATA, Kaggle input, data/raw, demo)")
    s.add_argument("--profile", default="quick", help="quick (default), full or smoke; see kit.pipeline.profiles.PROFILES")
    s.add_argument("--notebooks", nargs="+", default=None, metavar="NAME", help="run only these notebooks")
    s.add_argument("--timeout", type=int, default=3600, help="seconds one cell may run (default 3600)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("cv", help="leave-one-subject-out score of one method; last line is JSON")
    s.add_argument("--data", default=None, help="data folder (default as for run)")
    s.add_argument("--method", required=True,
                   help="an anchor (starter, thetacov, bandpower, eegnet, riemann) or a stage (experts, fusion, ensemble)")
    s.add_argument("--profile", default="quick", help="quick (default), full or smoke; see kit.pipeline.profiles.PROFILES")
    s.set_defaults(func=cmd_cv)

    s = sub.add_parser("bench", help="every anchor and kit stage on the same LOSO folds; writes reports/bench.md")
    s.add_argument("--data", nargs="+", default=None, metavar="DIR", help="data folders (default as for run)")
    s.add_argument("--profile", default="quick", help="quick (default), full or smoke; see kit.pipeline.profiles.PROFILES")
    s.add_argument("--out", default=None, help="report path (default: reports/bench.md under the output root)")
    s.add_argument("--methods", nargs="+", default=None, metavar="NAME", help="a subset of the methods")
    s.add_argument("--null", action=argparse.BooleanOptionalAction, default=None,
                   help="bench a null copy of the demo data (default: whenever a demo folder is benched)")
    s.add_argument("--memory", action="store_true", help="also measure peak memory of load + features at full scale")
    s.add_argument("--threads", type=int, default=1, help="threads per numeric library (default 1; 0 = theirs)")
    s.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples over subjects (default 2000)")
    s.add_argument("--null-scale", type=float, default=1.0,
                   help="size of the null copy x the real trial counts (default 1.0; 0 = the demo folder's)")
    s.add_argument("--jobs", type=int, default=1,
                   help="tasks at once (folders x method parts): loky processes or local Dask workers (default 1)")
    s.add_argument("--backend", choices=("loky", "dask", "ray"), default="loky",
                   help="joblib backend of the tasks: loky (this machine, default), dask (a Dask cluster), ray")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running Dask scheduler (tcp://host:8786) or Ray cluster; default a local cluster")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("profile-stages", help="each stage's wall time and peak memory (fresh process each), "
                       "and the critical path of kit run")
    s.add_argument("--data", default=None, help="data folder (default as for run)")
    s.add_argument("--profile", default="quick", help="quick (default), full or smoke")
    s.add_argument("--stages", nargs="+", default=None, metavar="STAGE",
                   help="a subset of load features <anchors> mae experts fusion fusion_lda ensemble nb01..nb05")
    s.add_argument("--out-root", default=None,
                   help="output root of the stages (default: profile-stages/<data> under the output root; emptied)")
    s.add_argument("--keep", action="store_true", help="keep the artifacts already in --out-root")
    s.add_argument("--out", default=None, help="also write the result as JSON to this file")
    s.set_defaults(func=cmd_profile_stages)

    s = sub.add_parser("null-study", help="cheap anchors and their ensemble (nested vs cross-fitted) on null seeds")
    s.add_argument("--seeds", type=int, default=12, help="null simulations, seeds 0..N-1 (default 12)")
    s.add_argument("--scale", type=float, default=0.2, help="size x the real trial counts (default 0.2)")
    s.add_argument("--threads", type=int, default=1, help="threads per numeric library (default 1)")
    s.set_defaults(func=cmd_null_study)

    s = sub.add_parser("rules", help="every ensemble rule against the best single component, per folder")
    s.add_argument("--data", nargs="+", default=None, metavar="DIR", help="data folders (default as for run)")
    s.add_argument("--profile", default="quick", help="quick (default), full or smoke")
    s.add_argument("--null", action=argparse.BooleanOptionalAction, default=True,
                   help="add a null copy of each simulated folder, same size (default: yes)")
    s.add_argument("--threads", type=int, default=1, help="threads per numeric library (default 1)")
    s.add_argument("--out", default=None, help="also write the table to this markdown file")
    s.add_argument("--kinds", nargs="+", default=None, metavar="KIND",
                   help="also simulated folders of these effect kinds (theta evoked lateral signflip null, or all)")
    s.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="simulation seeds of --kinds (default 0 1)")
    s.add_argument("--compute", action=argparse.BooleanOptionalAction, default=None,
                   help="compute every component first (default: with --kinds)")
    s.set_defaults(func=cmd_rules)

    s = sub.add_parser("validate", help="check a submission against the test files")
    s.add_argument("submission")
    s.add_argument("--data", default=None, help="data folder holding testing/")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("predict", help="apply a finished run's saved models to a folder's test files (no training)")
    s.add_argument("--data", default=None, help="data folder holding testing/ (default as for run)")
    s.add_argument("--artifacts", default=None,
                   help="artifacts/<tag> of the finished run (default: that of --data)")
    s.add_argument("--out", default=None, help="submission file (default: submissions/<tag>_predict.csv)")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("score", help="window-based AUC of a submission against a labels CSV (id,label)")
    s.add_argument("submission")
    s.add_argument("--labels", required=True, help="CSV with id={subject}_{trial},label")
    s.set_defaults(func=cmd_score)

    s = sub.add_parser("submit", help="validate a submission, then upload it with the kaggle package's API")
    s.add_argument("submission")
    s.add_argument("-m", "--message", required=True)
    s.add_argument("--data", default=None, help="data folder holding testing/")
    s.add_argument("--dry-run", action="store_true", help="validate and print the upload command only")
    s.set_defaults(func=cmd_submit)

    s = sub.add_parser("kaggle-kernel", help="write a push-ready Kaggle kernel folder (kaggle kernels push -p OUT)")
    s.add_argument("notebook", nargs="?", default="all",
                   help="a notebook of the series (e.g. 01_eda_theta_power) or all (default: 01-05 in one notebook)")
    s.add_argument("out", help="folder to write")
    s.add_argument("--user", default=None, help="Kaggle user name (default: from the Kaggle credentials)")
    s.add_argument("--title", default=None, help="kernel title; its slug is the kernel id")
    s.add_argument("--profile", default="quick", help="PROFILE of the notebooks (quick, full, smoke)")
    s.add_argument("--gpu", action="store_true", help="ask Kaggle for a GPU (enable_gpu)")
    s.add_argument("--kit-dataset", default=None, metavar="OWNER/SLUG",
                   help="read the kit from this attached Kaggle dataset (see kaggle-dataset) instead of embedding it")
    s.add_argument("--public", action="store_true", help="make the kernel public (default private)")
    s.set_defaults(func=cmd_kaggle_kernel)

    s = sub.add_parser("kaggle-dataset", help="write the kit as a Kaggle dataset folder (kaggle datasets create)")
    s.add_argument("out", help="folder to write")
    s.add_argument("--user", default=None, help="Kaggle user name (default: from the Kaggle credentials)")
    s.add_argument("--slug", default="sleep-emotion-kit", help="dataset slug (default sleep-emotion-kit)")
    s.add_argument("--title", default=None, help="dataset title (default 'Sleep emotion kit')")
    s.set_defaults(func=cmd_kaggle_dataset)
    return p


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error).

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KitError as exc:
        message = str(exc)
    except BrokenPipeError:  # e.g. `python -m kit cv ... | head -1`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except FileNotFoundError as exc:
        message = f"{exc.filename}: no such file or folder" if exc.filename else str(exc)
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        message = f"{where}{exc.strerror or exc}"
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(f"error: {_one_line(message)}", file=sys.stderr)
    return 2
