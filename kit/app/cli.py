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
from kit.app.parser import build_parser
from kit.core.errors import KitError
from kit.core.log import configure


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
    from kit.pipeline.profiles import check_profile
    from kit.pipeline.stages import cv_method

    check_profile(profile)
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
    from kit.app.prefetch import PREFETCH
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
COMMANDS = {
    "demo-data": cmd_demo_data,
    "inspect": cmd_inspect,
    "run": cmd_run,
    "cv": cmd_cv,
    "bench": cmd_bench,
    "profile-stages": cmd_profile_stages,
    "null-study": cmd_null_study,
    "rules": cmd_rules,
    "validate": cmd_validate,
    "predict": cmd_predict,
    "score": cmd_score,
    "submit": cmd_submit,
    "kaggle-kernel": cmd_kaggle_kernel,
    "kaggle-dataset": cmd_kaggle_dataset,
}
"""Command name -> handler of its parsed arguments."""


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
    if args.verbose:
        configure("DEBUG" if args.verbose > 1 else "INFO")
    try:
        return int(COMMANDS[args.command](args) or 0)
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
