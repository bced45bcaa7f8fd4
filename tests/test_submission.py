"""Tests for kit.pipeline.submission: writing, validating, reading labels, scoring."""

import gzip
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kit.core.errors import SubmissionError
from kit.pipeline.submission import expected_ids, read_labels, score_submission, validate_submission, write_submission
from kit.store import paths

SHARED = Path(paths.project_root()).parent / "shared"
EXAMPLE = SHARED / "reference" / "public_submission_example.csv.gz"
TEST_COUNTS = {1: 372, 7: 479, 12: 883}


def small():
    rng = np.random.default_rng(0)
    subject = np.repeat([1, 7], [3, 2])
    trial = np.array([0, 1, 2, 0, 1])
    pred = rng.random((5, 4))
    return pred, subject, trial


def write_text(path, text):
    path.write_text(text)
    return path


def test_expected_ids_order():
    ids = expected_ids(np.array([1, 12]), np.array([0, 5]), n_times=3)
    assert ids.tolist() == ["1_0_0", "1_0_1", "1_0_2", "12_5_0", "12_5_1", "12_5_2"]


@pytest.mark.parametrize("name", ["sub.csv", "sub.csv.gz"])
def test_round_trip(tmp_path, name):
    pred, subject, trial = small()
    path = write_submission(tmp_path / name, pred, subject, trial)
    if name.endswith(".gz"):
        assert gzip.open(path, "rt").readline() == "id,prediction\n"
    else:
        assert path.read_text().splitlines()[:2] == ["id,prediction", f"1_0_0,{float(pred[0, 0]):.6g}"]
    df = validate_submission(path, subject=subject, trial=trial, n_times=4)
    assert len(df) == 20
    np.testing.assert_allclose(df["prediction"].to_numpy(), pred.ravel(), rtol=5e-6, atol=0)  # 6 significant digits
    assert df.loc[19, ["subject", "trial", "sample"]].tolist() == [7, 1, 3]
    validate_submission(path, expected_ids(subject, trial, 4))
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left


def test_write_refuses_invalid_and_leaves_old_file(tmp_path):
    pred, subject, trial = small()
    path = write_submission(tmp_path / "sub.csv", pred, subject, trial)
    before = path.read_bytes()
    one_nan = pred.copy()
    one_nan[2, 3] = np.nan
    cases = [
        (one_nan, "1 predictions are NaN/inf"),
        (pred + 0.5, r"outside \[0, 1\]"),
        (pred[:, 0], "n_test_trials, n_times"),
    ]
    for bad, msg in cases:
        with pytest.raises(SubmissionError, match=msg):
            write_submission(path, bad, subject, trial)
    with pytest.raises(SubmissionError, match="must both be"):
        write_submission(path, pred, subject[:4], trial)
    with pytest.raises(SubmissionError, match="7_1 appears twice"):
        write_submission(path, pred, subject, np.array([0, 1, 2, 1, 1]))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sub.csv"]


def test_write_is_fast_for_the_real_size(tmp_path):
    subject = np.repeat(list(TEST_COUNTS), list(TEST_COUNTS.values()))
    trial = np.concatenate([np.arange(n) for n in TEST_COUNTS.values()])
    pred = np.random.default_rng(0).random((subject.size, 200))
    t0 = time.process_time()  # CPU time: robust to other jobs sharing the machine
    path = write_submission(tmp_path / "sub.csv", pred, subject, trial)
    assert time.process_time() - t0 < 2.0
    df = validate_submission(path, subject=subject, trial=trial)
    assert len(df) == 346_800


@pytest.mark.parametrize("body, msg", [
    ("id,pred\n1_0_0,0.5\n", "header must be exactly 'id,prediction', got 'id,pred'"),
    ("id,prediction\n1_0_0,0.5,1\n", "unparsable rows .a row has more fields than the header"),
    ("id,prediction\n1_0_0,0.5\n1_0_1,0.5,1\n", "unparsable rows .*Expected 2 fields in line 3, saw 3"),
    ("id,prediction\n1_0_0,abc\n", "1 unparsable predictions .first 'abc' for id 1_0_0, line 2"),
    ("id,prediction\n1_0_0,0.5\n1_0_x,0.5\n", "1 unparsable ids.*first '1_0_x' on line 3"),
    ("id,prediction\n1_0_0,0.5\n1_0_0,0.5\n1_0_1,0.5\n1_0_1,0.5\n", "2 duplicate ids .first 1_0_0"),
    ("id,prediction\n1_0_0,nan\n1_0_1,inf\n", "2 NaN/inf predictions .first id 1_0_0"),
    ("id,prediction\n1_0_0,-0.5\n1_0_1,1.5\n1_0_2,1\n", r"2 predictions outside \[0, 1\] .min -0.5, max 1.5"),
    ("id,prediction\n", "no rows"),
])
def test_validate_errors_name_the_file(tmp_path, body, msg):
    path = write_text(tmp_path / "bad.csv", body)
    with pytest.raises(SubmissionError, match=f"^{tmp_path / 'bad.csv'}: {msg}"):
        validate_submission(path)


def test_validate_missing_unexpected_and_missing_file(tmp_path):
    path = write_text(tmp_path / "s.csv", "id,prediction\n1_0_0,0.1\n1_0_1,0.2\n1_1_0,0.3\n")
    with pytest.raises(SubmissionError, match=r"s.csv: 1 missing ids of 4 expected \(first 1_1_1\)"):
        validate_submission(path, subject=np.array([1, 1]), trial=np.array([0, 1]), n_times=2)
    with pytest.raises(SubmissionError, match=r"s.csv: 1 unexpected ids \(first 1_1_0\)"):
        validate_submission(path, subject=np.array([1]), trial=np.array([0]), n_times=2)
    with pytest.raises(SubmissionError, match="nope.csv: file not found"):
        validate_submission(tmp_path / "nope.csv")
    (tmp_path / "junk.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(SubmissionError, match="junk.csv.gz: unreadable"):
        validate_submission(tmp_path / "junk.csv.gz")


def test_validate_accepts_a_dataset_like_object(tmp_path):
    pred, subject, trial = small()
    path = write_submission(tmp_path / "s.csv", pred, subject, trial)

    class Data:  # duck-typed like kit.data.dataset.Dataset
        def __init__(self):
            self.subject, self.trial, self.X = subject, trial, np.zeros((5, 16, 4))

        @property
        def test(self):
            return self

    assert len(validate_submission(path, data=Data())) == 20


def test_read_labels_and_errors(tmp_path):
    path = write_text(tmp_path / "labels.csv", "id,label\n1_0,1\n1_1,0\n7_0,1\n")
    s, t, y = read_labels(path)
    assert s.tolist() == [1, 1, 7] and t.tolist() == [0, 1, 0] and y.tolist() == [1, 0, 1]
    for body, msg in [("id,lab\n1_0,1\n", "header must be exactly 'id,label'"),
                      ("id,label\n1_0,2\n", r"1 labels not in \{0, 1\} \(first '2' for id 1_0\)"),
                      ("id,label\n1_0_0,1\n", "1 unparsable ids"),
                      ("id,label\n1_0,1\n1_0,0\n", "1 duplicate ids")]:
        write_text(path, body)
        with pytest.raises(SubmissionError, match=f"labels.csv: {msg}"):
            read_labels(path)


def test_score_submission_matches_auc(tmp_path):
    rng = np.random.default_rng(3)
    subject = np.repeat([1, 7], 10)
    trial = np.tile(np.arange(10), 2)
    y = np.tile([0, 1], 10)
    score = np.clip(0.5 + 0.2 * y + rng.normal(0, 0.2, 20), 0, 1)
    pred = np.repeat(score[:, None], 200, axis=1)
    sub = write_submission(tmp_path / "s.csv.gz", pred, subject, trial)
    lines = ["id,label"] + [f"{s}_{t},{lab}" for s, t, lab in zip(subject, trial, y)]
    labels = write_text(tmp_path / "labels.csv", "\n".join(lines) + "\n")
    ws = score_submission(sub, labels)
    want = np.mean([roc_auc_score(y[subject == s], score[subject == s]) for s in (1, 7)])
    assert ws.score == pytest.approx(want) and (ws.start, ws.stop) == (0, 199)
    # a labelled trial the submission lacks
    write_text(labels, "\n".join(lines + ["12_0,1"]) + "\n")
    with pytest.raises(SubmissionError, match=r"s.csv.gz: lacks 1 labelled trials .*first 12_0"):
        score_submission(sub, labels)
    # a subject with one class only in the labels
    one = ["id,label"] + [f"1_{t},1" for t in range(10)]
    write_text(labels, "\n".join(one) + "\n")
    with pytest.raises(SubmissionError, match="labels.csv: subject 1: one class only"):
        score_submission(sub, labels)


@pytest.mark.skipif(not EXAMPLE.is_file(), reason=f"{EXAMPLE} absent (../shared is not part of a clone)")
def test_real_public_submission_example():
    subject = np.repeat(list(TEST_COUNTS), list(TEST_COUNTS.values()))
    trial = np.concatenate([np.arange(n) for n in TEST_COUNTS.values()])
    df = validate_submission(EXAMPLE, expected_ids(subject, trial, 200))
    assert len(df) == 346_800
    assert df.groupby("subject")["trial"].nunique().to_dict() == TEST_COUNTS
    assert df["sample"].min() == 0 and df["sample"].max() == 199
    assert df.groupby("subject")["prediction"].nunique().min() > 1  # not a constant file
    # validating against another trial count must fail with a count and the first missing id
    with pytest.raises(SubmissionError, match=r"csv.gz: 200 unexpected ids \(first 12_882_0\)"):
        validate_submission(EXAMPLE, subject=subject[:-1], trial=trial[:-1])
