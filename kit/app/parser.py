"""The argument parser of ``python -m kit`` (:mod:`kit.app.cli` runs the commands it parses)."""

from __future__ import annotations

import argparse

from kit import __version__
from kit.data.simulate import KINDS as DEMO_KINDS  # the simulator's kinds of class effect (light: no scipy)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m kit``: ``args.command`` names the command, ``args.verbose`` counts ``-v``."""
    p = argparse.ArgumentParser(prog="python -m kit", description="Emotion decoding from NREM-sleep EEG: "
                                "data, validation, notebooks and submissions.")
    p.add_argument("--version", action="version", version=f"kit {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log progress (-v: INFO, -vv: DEBUG; default $KIT_LOG or warnings only)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data_commands(sub)
    _add_bench_commands(sub)
    _add_kaggle_commands(sub)
    return p


def _add_data_commands(sub) -> None:
    """Data, the notebook series, LOSO scores, submissions: demo-data inspect run cv validate predict score."""
    s = sub.add_parser("demo-data", help="write a simulated dataset in the competition layout")
    s.add_argument("out", help="folder to create")
    s.add_argument("--scale", type=float, default=None, help="fraction of the real trial counts (default: demo default)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--effect", type=float, default=1.0, help="size of the emotional effect; 0 = null data")
    s.add_argument("--kind", choices=DEMO_KINDS, default="theta",
                   help="what differs between the classes (kit.data.demo docstring; default: theta)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing folder")

    s = sub.add_parser("inspect", help="describe a .mat file or a data folder")
    s.add_argument("path")

    s = sub.add_parser("run", help="execute the notebooks 01-05 in order (executed copies in reports/runs/)")
    s.add_argument("--data", default=None, help="data folder (default: $KIT_DATA, Kaggle input, data/raw, demo)")
    s.add_argument("--profile", default="quick", help="quick (default), full or smoke; see kit.pipeline.profiles.PROFILES")
    s.add_argument("--notebooks", nargs="+", default=None, metavar="NAME", help="run only these notebooks")
    s.add_argument("--timeout", type=int, default=3600, help="seconds one cell may run (default 3600)")

    s = sub.add_parser("cv", help="leave-one-subject-out score of one method; last line is JSON")
    s.add_argument("--data", default=None, help="data folder (default as for run)")
    s.add_argument("--method", required=True,
                   help="an anchor (starter, thetacov, bandpower, eegnet, riemann) or a stage (experts, fusion, ensemble)")
    s.add_argument("--profile", default="quick", help="quick (default), full or smoke; see kit.pipeline.profiles.PROFILES")

    s = sub.add_parser("validate", help="check a submission against the test files")
    s.add_argument("submission")
    s.add_argument("--data", default=None, help="data folder holding testing/")

    s = sub.add_parser("predict", help="apply a finished run's saved models to a folder's test files (no training)")
    s.add_argument("--data", default=None, help="data folder holding testing/ (default as for run)")
    s.add_argument("--artifacts", default=None,
                   help="artifacts/<tag> of the finished run (default: that of --data)")
    s.add_argument("--out", default=None, help="submission file (default: submissions/<tag>_predict.csv)")

    s = sub.add_parser("score", help="window-based AUC of a submission against a labels CSV (id,label)")
    s.add_argument("submission")
    s.add_argument("--labels", required=True, help="CSV with id={subject}_{trial},label")


def _add_bench_commands(sub) -> None:
    """Studies: bench profile-stages null-study rules."""
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

    s = sub.add_parser("null-study", help="cheap anchors and their ensemble (nested vs cross-fitted) on null seeds")
    s.add_argument("--seeds", type=int, default=12, help="null simulations, seeds 0..N-1 (default 12)")
    s.add_argument("--scale", type=float, default=0.2, help="size x the real trial counts (default 0.2)")
    s.add_argument("--threads", type=int, default=1, help="threads per numeric library (default 1)")

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


def _add_kaggle_commands(sub) -> None:
    """Kaggle: submit kaggle-kernel kaggle-dataset."""
    s = sub.add_parser("submit", help="validate a submission, then upload it with the kaggle package's API")
    s.add_argument("submission")
    s.add_argument("-m", "--message", required=True)
    s.add_argument("--data", default=None, help="data folder holding testing/")
    s.add_argument("--dry-run", action="store_true", help="validate and print the upload command only")

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

    s = sub.add_parser("kaggle-dataset", help="write the kit as a Kaggle dataset folder (kaggle datasets create)")
    s.add_argument("out", help="folder to write")
    s.add_argument("--user", default=None, help="Kaggle user name (default: from the Kaggle credentials)")
    s.add_argument("--slug", default="sleep-emotion-kit", help="dataset slug (default sleep-emotion-kit)")
    s.add_argument("--title", default=None, help="dataset title (default 'Sleep emotion kit')")
