"""kit.app.kaggle: kernel folders that run offline like a Kaggle kernel, the kit as a wheel, submit through the API.

The kernels are executed with nbclient the way Kaggle runs them: working directory = the output folder,
no internet, nothing of the repository importable (PYTHONPATH points to an empty folder; the kit comes
from the notebook's first cell), the competition data laid out like ``/kaggle/input`` (``$KIT_KAGGLE_INPUT``
stands for ``/kaggle/input`` and ``$KIT_OUTPUT`` for ``/kaggle/working``, which a test cannot create).
"""

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from kit import COMPETITION, __version__
from kit.app import cli
from kit.app import kaggle as kk
from kit.app.kaggle import credentials as kcred
from kit.core.errors import DataError, KitError
from kit.data.dataset import load_dataset
from kit.data.demo import write_demo_dataset
from kit.pipeline.submission import write_submission
from kit.store.paths import project_root

KEY = "0123456789abcdef0123456789abcdef"  # a fake Kaggle API key: must never be printed


# ----------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def kaggle_input(tmp_path_factory):
    """``/kaggle/input`` stand-in holding the competition data (a tiny demo) under its slug."""
    root = tmp_path_factory.mktemp("kaggle") / "input"
    write_demo_dataset(root / COMPETITION, scale=0.03, seed=11)
    return root


@pytest.fixture(scope="module")
def submission(kaggle_input, tmp_path_factory):
    te = load_dataset(kaggle_input / COMPETITION, splits=("test",))
    pred = np.random.default_rng(0).uniform(0, 1, (len(te), 200))
    return write_submission(tmp_path_factory.mktemp("sub") / "submission.csv", pred, te.subject, te.trial)


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    """An environment without any Kaggle credentials (HOME and KAGGLE_CONFIG_DIR in tmp)."""
    for var in [v for v in os.environ if v.startswith("KAGGLE_")]:
        monkeypatch.delenv(var)
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def kaggle_env(tmp_path, input_root):
    """Environment of a kernel: no repo on the path, Kaggle's folders replaced by temporary ones."""
    working, tmp, empty = tmp_path / "working", tmp_path / "tmp", tmp_path / "empty"
    for d in (working, tmp, empty):
        d.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIT_", "KAGGLE_")) and k != "PYTHONPATH"}
    env.update(KIT_KAGGLE_INPUT=str(input_root), KIT_OUTPUT=str(working), TMPDIR=str(tmp), PYTHONPATH=str(empty))
    return env, working, tmp


def execute(nb, env, cwd, timeout=300):
    """Run all cells; on a busy machine wait for every output (nbclient drops late ones after 4 s by default)."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}},
                            iopub_timeout=120, raise_on_iopub_timeout=True, startup_timeout=180)
    client.execute(env=env)
    return nb


def stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, out, err, *needles):
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    for needle in needles:
        assert needle in err, err


# ----------------------------------------------------------------------------- kernel folder
def test_kernel_folder_metadata_and_notebook(tmp_path, capsys):
    out = tmp_path / "kernel"
    code, stdout_, err = run_cli(capsys, "kaggle-kernel", "01_eda_theta_power", out, "--user", "alice",
                                 "--profile", "smoke")
    assert code == 0, err
    meta = json.loads((out / "kernel-metadata.json").read_text())
    assert meta == {
        "id": "alice/sleep-emotions-01-eda-theta-power", "title": "Sleep emotions 01 eda theta power",
        "code_file": "sleep-emotions-01-eda-theta-power.ipynb", "language": "python", "kernel_type": "notebook",
        "is_private": True, "enable_gpu": False, "enable_tpu": False, "enable_internet": False,
        "dataset_sources": [], "competition_sources": [COMPETITION], "kernel_sources": [], "model_sources": []}
    assert sorted(p.name for p in out.iterdir()) == ["kernel-metadata.json", meta["code_file"]]
    assert f"kaggle kernels push -p {out}" in stdout_
    slugify = pytest.importorskip("slugify").slugify  # what `kaggle kernels push` checks the title against
    assert slugify(meta["title"]) == meta["id"].split("/")[1]

    nb = nbformat.read(out / meta["code_file"], as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3" and "jupytext" not in nb.metadata
    assert len({c.id for c in nb.cells}) == len(nb.cells)
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code")
    boot = nb.cells[0]
    assert boot.metadata["tags"] == ["kit-bootstrap"] and boot.metadata["_kg_hide-input"] is True
    wheel_b64 = boot.source.split('KIT_WHEEL = "')[1].split('"')[0]
    assert base64.b64decode(wheel_b64) == kk.wheel_bytes()  # the kit embedded, as it is now
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    i = tags.index(["parameters"])
    assert tags[i + 1] == ["injected-parameters"]
    values = {}
    exec(nb.cells[i + 1].source, values)  # papermill writes Python literals
    assert (values["DATA"], values["PROFILE"]) == (None, "smoke")

    # rebuilding in the same folder under another title replaces the notebook; GPU and dataset recorded
    code, _, err = run_cli(capsys, "kaggle-kernel", "all", out, "--user", "alice", "--gpu",
                           "--kit-dataset", "alice/sleep-emotion-kit", "--public")
    assert code == 0, err
    meta = json.loads((out / "kernel-metadata.json").read_text())
    assert meta["id"] == "alice/sleep-emotions-pipeline" and meta["enable_gpu"] is True
    assert meta["dataset_sources"] == ["alice/sleep-emotion-kit"] and meta["is_private"] is False
    assert sorted(p.name for p in out.iterdir()) == ["kernel-metadata.json", "sleep-emotions-pipeline.ipynb"]
    assert 'KIT_WHEEL = ""' in nbformat.read(out / meta["code_file"], as_version=4).cells[0].source


def test_all_in_one_notebook_runs_the_series_then_publishes():
    from kit.app.runner import NOTEBOOKS

    nb = kk.kernel_notebook("all", profile="quick", gpu=True)
    nbformat.validate(nb)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    params = [i for i, t in enumerate(tags) if t == ["parameters"]]
    assert len(params) == len(NOTEBOOKS)
    for i in params:
        assert tags[i + 1] == ["injected-parameters"] and 'PROFILE = "quick"' in nb.cells[i + 1].source
    separators = [c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("---")]
    assert [s.split("`")[1] for s in separators] == list(NOTEBOOKS)
    assert tags[-1] == ["kit-publish"] and "publish_submission(result.submission)" in nb.cells[-1].source
    assert "kaggle_setup(expect_gpu=True)" in nb.cells[0].source
    assert "kit-publish" not in str(kk.kernel_notebook("02_mae_pretraining").cells)


def test_kernel_cli_errors(tmp_path, capsys, no_credentials):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert_one_line_error(*run_cli(capsys, "kaggle-kernel", foreign, "--user", "alice"), str(foreign),
                          "not a kernel folder")
    assert (foreign / "notes.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1
    out = tmp_path / "k"
    assert_one_line_error(*run_cli(capsys, "kaggle-kernel", "07_nope", out, "--user", "alice"), "'07_nope'")
    assert_one_line_error(*run_cli(capsys, "kaggle-kernel", out, "--user", "alice", "--profile", "huge"), "'huge'")
    assert_one_line_error(*run_cli(capsys, "kaggle-kernel", out, "--user", "alice", "--kit-dataset", "nodash"),
                          "OWNER/SLUG")
    assert_one_line_error(*run_cli(capsys, "kaggle-kernel", out), "--user")  # no credentials to take it from
    assert_one_line_error(*run_cli(capsys, "kaggle-kernel", out, "--user", "a b"), "'a b'")
    assert_one_line_error(*run_cli(capsys, "kaggle-dataset", out, "--user", "alice", "--slug", "Bad_Slug"),
                          "'Bad_Slug'")
    assert not out.exists()


# ----------------------------------------------------------------------------- executed like Kaggle
def test_kernel_executes_offline_against_kaggle_input(tmp_path, kaggle_input):
    bundle = kk.build_kernel(tmp_path / "kernel", "01_eda_theta_power", user="alice", profile="smoke")
    before = snapshot(bundle)
    code_file = json.loads((bundle / "kernel-metadata.json").read_text())["code_file"]
    env, working, tmp = kaggle_env(tmp_path, kaggle_input)
    nb = execute(nbformat.read(bundle / code_file, as_version=4), env, cwd=working)

    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    boot = stdout(nb.cells[0])
    assert f"kit {__version__} from this notebook" in boot
    kit_line = next(line for line in boot.splitlines() if line.startswith("kit     "))
    assert f"({tmp}{os.sep}kit-" in kit_line  # the embedded copy, not the repository
    assert str(project_root()) not in boot
    assert f"data    {kaggle_input / COMPETITION}" in boot and f"output  {working}" in boot
    assert "starter LOSO score" in "".join(stdout(c) for c in nb.cells)

    preds = np.load(working / "artifacts" / COMPETITION / "starter" / "predictions.npz")
    n_test = len(load_dataset(kaggle_input / COMPETITION, splits=("test",)))
    assert preds["test"].shape == (n_test, 200) and np.isfinite(preds["oof"]).all()
    assert len(list((working / "reports" / "figures").glob("01_*.png"))) >= 4
    assert snapshot(bundle) == before  # the kernel's own folder is read-only on Kaggle: nothing written there


def test_kernel_reads_the_kit_from_an_attached_dataset(tmp_path, kaggle_input, capsys):
    code, out, err = run_cli(capsys, "kaggle-dataset", kaggle_input / "sleep-emotion-kit", "--user", "alice")
    assert code == 0, err
    meta = json.loads((kaggle_input / "sleep-emotion-kit" / "dataset-metadata.json").read_text())
    assert meta["id"] == "alice/sleep-emotion-kit" and meta["licenses"] == [{"name": "other"}]
    assert [p.name for p in (kaggle_input / "sleep-emotion-kit").iterdir() if p.is_dir()] == []  # flat: no dir-mode
    wheels = sorted(p.name.split("-")[0] for p in (kaggle_input / "sleep-emotion-kit").glob("*.whl"))
    assert wheels == ["array_api_compat", "array_api_extra", "pyriemann", "sleep_emotion_kit"]
    nb = kk.kernel_notebook("01_eda_theta_power", kit_dataset="alice/sleep-emotion-kit")
    probe = nbformat.v4.new_code_cell("import json, os, kit.data.dataset\n"
                                      "print(json.dumps({'kit': kit.data.dataset.__file__, 'data': os.environ['KIT_DATA']}))")
    nb.cells = [nb.cells[0], probe]
    env, working, tmp = kaggle_env(tmp_path, kaggle_input)
    execute(nb, env, cwd=working)
    wheel = kaggle_input / "sleep-emotion-kit" / f"sleep_emotion_kit-{__version__}-py3-none-any.whl"
    assert f"kit {__version__} from {wheel}" in stdout(nb.cells[0])
    seen = json.loads(stdout(nb.cells[1]))
    assert seen["kit"].startswith(f"{tmp}{os.sep}kit-") and seen["data"] == str(kaggle_input / COMPETITION)


def test_a_kernel_without_pyriemann_takes_the_bundled_copy(tmp_path, kaggle_input):
    """Where the image lacks pyriemann (or its array-API helpers), the bootstrap unpacks the bundled wheels."""
    boot = kk.kernel_notebook("02_mae_pretraining").cells[0].source
    script = tmp_path / "boot.py"
    script.write_text("import sys\n"
                      "for m in ('pyriemann', 'array_api_extra', 'array_api_compat'):\n"
                      "    sys.modules[m] = None  # this Python cannot import them\n"
                      + boot + "\nimport pyriemann\nfrom kit.methods.riemann import recentre\n"
                      "print('PYRIEMANN', pyriemann.__version__, pyriemann.__file__)\n")
    env, working, tmp = kaggle_env(tmp_path, kaggle_input)
    proc = subprocess.run([sys.executable, str(script)], env=env, cwd=working, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    for dist in kk.VENDORED:
        assert f"{dist} from the kit's bundle" in proc.stdout
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PYRIEMANN"))
    assert line.split()[1] == "0.12" and line.split()[2].startswith(f"{tmp}{os.sep}kit-")


def test_dependency_wheels_are_reproducible_and_hold_the_package():
    name, data = kk.dependency_wheel("pyriemann")
    assert name.startswith("pyriemann-0.12-") and name.endswith("-py3-none-any.whl")
    assert kk.dependency_wheel("pyriemann")[1] == data
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "pyriemann/geometry/tangentspace.py" in names and "pyriemann-0.12.dist-info/METADATA" in names
    assert not [n for n in names if n.endswith(".pyc")]
    with pytest.raises(KitError, match="not vendored"):
        kk.dependency_wheel("numpy")


def test_bootstrap_without_the_dataset_says_what_to_attach(tmp_path, monkeypatch):
    source = kk.kernel_notebook("02_mae_pretraining", kit_dataset="alice/sleep-emotion-kit").cells[0].source
    monkeypatch.setenv("KIT_KAGGLE_INPUT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="attach the dataset alice/sleep-emotion-kit"):
        exec(compile(source, "bootstrap", "exec"), {})


# ----------------------------------------------------------------------------- inside a kernel
def test_kaggle_setup_finds_the_data_or_says_to_attach_it(tmp_path, kaggle_input, monkeypatch):
    monkeypatch.delenv("KIT_DATA", raising=False)
    moved = tmp_path / "input" / "competitions" / COMPETITION  # a mount path Kaggle might use one day
    moved.mkdir(parents=True)
    (moved / "training").symlink_to(kaggle_input / COMPETITION / "training")
    assert kk.find_competition_data(tmp_path / "input") == moved
    assert kk.find_competition_data(kaggle_input) == kaggle_input / COMPETITION
    lines = []
    report = kk.kaggle_setup(input_root=tmp_path / "input", log=lines.append)
    assert os.environ["KIT_DATA"] == str(moved) == report["data"]
    assert report["device"].startswith(("cpu", "cuda")) and len(lines) == 4
    monkeypatch.delenv("KIT_DATA")
    empty = tmp_path / "empty_input"
    empty.mkdir()
    with pytest.raises(DataError, match=f"{empty}: the competition data is not attached.*{COMPETITION}"):
        kk.kaggle_setup(input_root=empty, log=None)
    monkeypatch.setenv("KIT_DATA", "/somewhere/else")  # an explicit choice wins
    assert kk.kaggle_setup(input_root=empty, log=None)["data"] == "/somewhere/else"


def test_publish_submission_copies_the_file_it_is_given(tmp_path, monkeypatch):
    monkeypatch.setenv("KIT_OUTPUT", str(tmp_path))
    assert kk.publish_submission(None, log=None) is None
    assert kk.publish_submission(tmp_path / "missing.csv", log=None) is None
    (tmp_path / "submissions").mkdir()
    mine, newer = tmp_path / "submissions" / "a.csv", tmp_path / "submissions" / "b.csv"
    mine.write_text("id,prediction\nmine\n")
    newer.write_text("id,prediction\nnewer\n")  # written later, but not the one handed over
    assert kk.publish_submission(mine, log=None) == tmp_path / "submission.csv"
    assert (tmp_path / "submission.csv").read_text() == mine.read_text()


# ----------------------------------------------------------------------------- the wheel
def test_wheel_is_reproducible_complete_and_installable(tmp_path):
    data = kk.wheel_bytes()
    assert data == kk.wheel_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        pkg = project_root() / "kit"
        sources = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*.py") if "__pycache__" not in p.parts}
        assert "app/kaggle/__init__.py" in sources and "pipeline/stages.py" in sources
        assert {n.split("/", 1)[1] for n in names if n.startswith("kit/")} == sources
        record = zf.read(f"sleep_emotion_kit-{__version__}.dist-info/RECORD").decode().splitlines()
        for row in record[:-1]:
            name, digest, size = row.split(",")
            blob = zf.read(name)
            expect = base64.urlsafe_b64encode(hashlib.sha256(blob).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expect}" and int(size) == len(blob), name
        assert "Tag: py3-none-any" in zf.read(f"sleep_emotion_kit-{__version__}.dist-info/WHEEL").decode()
    wheel = kk.build_wheel(tmp_path)
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                          "--disable-pip-version-check", "--target", str(target), str(wheel)],
                         capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", "import kit.app.kaggle; print(kit.app.kaggle.__file__)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == str(target / "kit" / "app" / "kaggle" / "__init__.py"), proc.stderr


# ----------------------------------------------------------------------------- credentials
def test_credentials_sources_and_precedence(no_credentials, monkeypatch):
    home = no_credentials
    with pytest.raises(KitError, match="no Kaggle credentials") as err:
        kk.find_credentials()
    assert str(err.value).startswith(str(home / ".kaggle" / "kaggle.json"))
    (home / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "alice", "key": KEY}))
    creds = kk.find_credentials()
    assert (creds.source, creds.username, creds.secret) == (str(home / ".kaggle" / "kaggle.json"), "alice", KEY)
    assert KEY not in repr(creds)
    monkeypatch.setenv("KAGGLE_USERNAME", "bob")  # the environment overrides the file, field by field
    creds = kk.find_credentials()
    assert creds.username == "bob" and creds.secret == KEY and "KAGGLE_USERNAME" in creds.source
    cfg = home / "cfg"
    cfg.mkdir()
    (cfg / "kaggle.json").write_text(json.dumps({"username": "carol", "key": KEY[::-1]}))
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(cfg))
    assert kk.find_credentials().username == "carol"
    monkeypatch.setenv("KAGGLE_API_TOKEN", "KGAT_" + KEY)
    assert kk.find_credentials().source == "KAGGLE_API_TOKEN"


@pytest.mark.parametrize("content, needle", [
    ('{"username": "alice", "key": "' + KEY + '"', "not valid JSON (line 1, column"),
    ('["alice", "' + KEY + '"]', "expected a JSON object"),
    ('{"user": "alice", "token": "' + KEY + '"}', 'no "username" field (fields: token, user)'),
    ('{"username": "alice"}', 'no "key" field'),
    ('{"username": "alice", "key": ""}', "the Kaggle key is empty"),
    ('{"username": "alice", "key": "' + KEY + ' x"}', "the Kaggle key contains spaces"),
    ('{"username": "alice", "key": 12345678}', "the Kaggle key is a JSON int"),
])
def test_malformed_kaggle_json_is_one_line_without_the_key(no_credentials, capsys, submission, kaggle_input,
                                                          monkeypatch, content, needle):
    path = no_credentials / ".kaggle" / "kaggle.json"
    path.write_text(content)
    monkeypatch.setattr(kcred, "_kaggle_api_class", lambda: pytest.fail("kaggle imported before the check"))
    code, out, err = run_cli(capsys, "submit", submission, "-m", "first try", "--data", kaggle_input / COMPETITION)
    assert_one_line_error(code, out, err, str(path), needle)
    assert KEY not in out + err and "12345678" not in out + err


def test_half_set_environment_credentials(no_credentials, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    with pytest.raises(KitError, match="^KAGGLE_KEY: not set, but KAGGLE_USERNAME is"):
        kk.find_credentials()
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    with pytest.raises(KitError, match="^KAGGLE_USERNAME: not set, but KAGGLE_KEY is") as err:
        kk.find_credentials()
    assert KEY not in str(err.value)


# ----------------------------------------------------------------------------- submit
@pytest.fixture
def api(monkeypatch, no_credentials):
    """The real KaggleApi class with its network call replaced: records competition_submit's arguments."""
    KaggleApi = kcred._kaggle_api_class()
    calls = []

    class Reply:
        message = "Successfully submitted to Predicting Emotions During Sleep Using Brain Waves"

    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        calls.append({"file": file_name, "message": message, "competition": competition, "quiet": quiet,
                      "auth": self.config_values.get("auth_method"), "user": self.config_values.get("username")})
        return Reply()

    monkeypatch.setattr(KaggleApi, "competition_submit", competition_submit)
    return KaggleApi, calls


def test_submit_calls_the_api_with_file_message_and_competition(api, capsys, submission, kaggle_input,
                                                                 monkeypatch):
    KaggleApi, calls = api
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")  # KaggleApi.authenticate() runs for real: offline for a key
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    code, out, err = run_cli(capsys, "submit", submission, "-m", "theta LDA v1", "--data", kaggle_input / COMPETITION)
    assert code == 0, err
    assert len(calls) == 1 and "LEGACY_API_KEY" in calls[0].pop("auth")  # really authenticated, with the key
    assert calls == [{"file": str(submission), "message": "theta LDA v1", "competition": COMPETITION, "quiet": True,
                      "user": "alice"}]
    assert out.splitlines()[0].startswith("OK: ") and f"submitted {submission} to {COMPETITION}" in out
    assert KEY not in out + err


def test_invalid_submission_is_refused_before_any_upload(api, capsys, tmp_path, submission, kaggle_input,
                                                         monkeypatch):
    KaggleApi, calls = api
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    bad = tmp_path / "bad.csv"
    lines = submission.read_text().splitlines()
    bad.write_text("\n".join(lines[:-1]) + "\n")  # one row short
    code, out, err = run_cli(capsys, "submit", bad, "-m", "x", "--data", kaggle_input / COMPETITION)
    assert_one_line_error(code, out, err, str(bad), "1 missing ids")
    assert calls == []


def test_missing_credentials_stop_before_kaggle_is_imported(no_credentials, capsys, monkeypatch, submission,
                                                            kaggle_input):
    monkeypatch.setattr(kcred, "_kaggle_api_class", lambda: pytest.fail("kaggle imported without credentials"))
    code, out, err = run_cli(capsys, "submit", submission, "-m", "x", "--data", kaggle_input / COMPETITION)
    assert_one_line_error(code, out, err, "kaggle.json: no Kaggle credentials", "KAGGLE_USERNAME and KAGGLE_KEY")
    code, out, err = run_cli(capsys, "submit", submission, "-m", "x", "--data", kaggle_input / COMPETITION,
                             "--dry-run")
    assert code == 0 and "would run: kaggle competitions submit -c " + COMPETITION in out
    assert "credentials: none usable" in out


def test_api_errors_are_one_line_and_scrubbed(api, capsys, submission, kaggle_input, monkeypatch):
    KaggleApi, calls = api
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", KEY)

    def refused(self, *args, **kwargs):
        raise OSError(f"401 Client Error: Unauthorized for url: https://www.kaggle.com/api/v1?key={KEY}\nretry")

    monkeypatch.setattr(KaggleApi, "competition_submit", refused)
    code, out, err = run_cli(capsys, "submit", submission, "-m", "x", "--data", kaggle_input / COMPETITION)
    assert_one_line_error(code, out, err, str(submission), "upload to Kaggle failed (OSError: 401 Client Error",
                          "key=***")
    assert KEY not in out + err

    class Failed:
        message = KaggleApi.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE

    monkeypatch.setattr(KaggleApi, "competition_submit", lambda self, *a, **k: Failed())
    assert_one_line_error(*run_cli(capsys, "submit", submission, "-m", "x", "--data", kaggle_input / COMPETITION),
                          "Could not submit to competition")

    def no_auth(self):
        print(f"secret {KEY}")  # whatever the client prints is not shown
        raise SystemExit(1)

    monkeypatch.setattr(KaggleApi, "authenticate", no_auth)
    code, out, err = run_cli(capsys, "submit", submission, "-m", "x", "--data", kaggle_input / COMPETITION)
    assert_one_line_error(code, out, err, "KAGGLE_USERNAME + KAGGLE_KEY: Kaggle did not accept these credentials")
    assert KEY not in out + err


def test_submit_subprocess_never_prints_the_key(tmp_path, submission, kaggle_input):
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text('{"username": "alice", "key": "' + KEY + '"')  # truncated JSON
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(home), PYTHONPATH=str(project_root()))
    proc = subprocess.run([sys.executable, "-m", "kit", "submit", str(submission), "-m", "x", "--data",
                           str(kaggle_input / COMPETITION)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"error: {home / '.kaggle' / 'kaggle.json'}: not valid JSON")
    assert proc.stderr.count("\n") == 1 and KEY not in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- the kaggle client itself
def test_the_kaggle_client_modules_that_submit_uses_import(tmp_path):
    """The installed ``kaggle`` release imports, offline and without credentials, and has what submit calls.

    A release that imports an undeclared module (kaggle 2.2.5 and ``six``) fails here, in CI, not in a user's
    ``kit submit``. Run in a fresh interpreter with an empty HOME so no earlier import or token can help.
    """
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(home / ".kaggle"), PYTHONPATH=str(project_root()))
    code = ("import inspect, kit.app.kaggle as kk, kit.app.kaggle.credentials as kcred\n"
            "Api = kcred._kaggle_api_class()\n"
            "import kaggle.models.upload_file\n"
            "params = list(inspect.signature(Api.competition_submit).parameters)\n"
            "print(Api.__module__, params[:4], callable(Api.authenticate))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "kaggle.api.kaggle_api_extended"
    assert "['self', 'file_name', 'message', 'competition']" in proc.stdout and proc.stdout.split()[-1] == "True"


def test_a_missing_dependency_of_kaggle_is_named_with_its_fix(tmp_path, submission, kaggle_input):
    """kaggle installed but its module ``six`` absent: one line naming six and ``pip install six``."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env.update(HOME=str(home), KAGGLE_USERNAME="alice", KAGGLE_KEY=KEY, PYTHONPATH=str(project_root()))
    code = ("import sys\nsys.modules['six'] = None  # as if six were not installed\n"
            "from kit.app import cli\nsys.exit(cli.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "submit", str(submission), "-m", "x", "--data",
                           str(kaggle_input / COMPETITION)], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "error: kaggle: its module 'six' is missing (pip install six)\n"


def test_import_failure_messages():
    from kit.core.errors import import_failure
    assert str(import_failure("kaggle", ModuleNotFoundError("No module named 'kaggle'", name="kaggle"))) == \
        "kaggle: package not installed (pip install kaggle)"
    assert str(import_failure("kaggle", ModuleNotFoundError("x", name="kaggle.api"))) == \
        "kaggle: package not installed (pip install kaggle)"
    assert str(import_failure("kaggle", ModuleNotFoundError("x", name="six"))) == \
        "kaggle: its module 'six' is missing (pip install six)"
    assert str(import_failure("kaggle", ModuleNotFoundError("x", name="yaml.cyaml"))) == \
        "kaggle: its module 'yaml.cyaml' is missing (pip install pyyaml)"
    msg = str(import_failure("kaggle", ImportError("cannot import name 'X' from 'kagglesdk'\n(unknown)")))
    assert msg == ("kaggle: installed but fails to import (cannot import name 'X' from 'kagglesdk' (unknown)); "
                   "reinstall the tested versions: pip install -r requirements.lock")
