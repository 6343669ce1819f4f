"""A job shared through a PostgreSQL server: several worker processes finish it with
every layer done and each layer's best mapping the same as one process finds with the
same seed and budget, also when they all start at once on a fresh database; a worker
killed with SIGKILL loses nothing but its trial in flight and the others complete the
job; a database restart mid-job is waited out, and an outage longer than the retry
window ends the command with one line and a clean resume; the job's definition comes
back from the storage as it went in; a password in the storage URL never shows."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mapper import worker
from mapper.cli import main
from mapper.constraints import PRESETS, Constraints
from mapper.search.engine import search_trials
from mapper.search.run import Settings
from mapper.specs.load import load_specs
from mapper.specs.files import shipped_specs_dir
from postgres_server import (fresh_database, needs_postgres, needs_postgres_restarts,  # noqa: F401 (a fixture)
                             postgres_url, server_stopped)
from tiny_network import SEARCHED, best_mappings, finish, start, write_layer, write_specs

# At most 12 trials per layer; --patience stops some layers before (each after 8-11)
BUDGET = ["--trials", "12", "--patience", "5", "--seed", "3", "--jobs", "1"]
# Long enough (~0.2 s of storage per trial) that a signal or a kill after a layer's
# second or third trial comes well before the search of the layer ends.
LONG_BUDGET = ["--trials", "30", "--patience", "0", "--seed", "3", "--jobs", "1"]
HEARTBEAT = 1  # seconds: a killed worker's search is taken over after 3


@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of the job searched by one process, with its own journals."""
    folder = tmp_path_factory.mktemp("single")
    assert main(["search", *write_specs(folder), "-o", str(folder / "out"), *BUDGET]) == 0
    return folder / "out"


@pytest.fixture(scope="module")
def single_process(single_process_run: Path) -> dict[str, list]:
    """Every layer's best mapping as one process finds it."""
    return best_mappings(single_process_run)


@pytest.fixture(scope="module")
def single_process_long(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """Every layer's best mapping as one process finds it with LONG_BUDGET."""
    folder = tmp_path_factory.mktemp("single-long")
    assert main(["search", *write_specs(folder), "-o", str(folder / "out"), *LONG_BUDGET]) == 0
    return best_mappings(folder / "out")


@pytest.fixture(scope="module")
def single_process_trials(single_process_run: Path) -> dict[str, int]:
    """Each searched layer's completed trials when one process searched it."""
    trials = {name: json.loads((single_process_run / "layers" / name / "best.json").read_text())["search"]["trials"]
              for name in SEARCHED}
    assert any(count < 12 for count in trials.values())  # patience stopped some
    return trials


def wait_for_job(url: str, name: str) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            worker.load_job(url, name)
            return
        except worker.JobError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def leases(url: str, job: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=worker.JOB_PREFIX + job, storage=url).get_trials(deepcopy=False)


def completed_params(url: str, layer: str) -> list[dict]:
    """The parameters of the layer's completed search trials (the polish's not counted),
    in order (none before its study exists)."""
    names = [s.study_name for s in optuna.get_all_study_summaries(url) if s.study_name.startswith(layer + "/")]
    assert len(names) <= 1, names
    if not names:
        return []
    study = optuna.load_study(study_name=names[0], storage=url)
    return [t.params for t in search_trials(study)]


# ------------------------------------------------------------- with a server


@needs_postgres
def test_three_workers_finish_the_job_with_the_answers_of_one_process(
        tmp_path: Path, postgres_url: str, single_process: dict[str, list],
        single_process_trials: dict[str, int]) -> None:
    specs, out = write_specs(tmp_path), tmp_path / "out"
    starter = start("search", *specs, "-o", str(out), *BUDGET, "--storage", postgres_url, "--job", "tiny",
                    "--heartbeat", str(HEARTBEAT))
    wait_for_job(postgres_url, "tiny")
    workers = [start("worker", "--storage", postgres_url, "--job", "tiny", "--jobs", "1") for _ in range(2)]
    results = [finish(p) for p in (starter, *workers)]

    assert [code for code, _ in results] == [0, 0, 0], results
    assert best_mappings(out) == single_process
    complete = [t for t in leases(postgres_url, "tiny") if t.state == TrialState.COMPLETE]
    assert sorted(t.user_attrs["name"] for t in complete) == sorted(SEARCHED)  # each once
    for layer in SEARCHED:  # no worker overshot the budget, or stopped short of it
        assert len(completed_params(postgres_url, layer)) == single_process_trials[layer]
    password = postgres_url.split(":")[2].split("@")[0]
    shown = "".join(text for _, text in results) + "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert password not in shown and "***" in shown


@needs_postgres
def test_a_worker_killed_mid_search_loses_nothing_and_the_job_completes(
        tmp_path: Path, postgres_url: str, single_process_long: dict[str, list]) -> None:
    specs, out = write_specs(tmp_path), tmp_path / "out"
    starter = start("search", *specs, "-o", str(out), *LONG_BUDGET, "--storage", postgres_url, "--job", "tiny",
                    "--heartbeat", str(HEARTBEAT))
    wait_for_job(postgres_url, "tiny")
    victim = start("worker", "--storage", postgres_url, "--job", "tiny", "--jobs", "1")
    layer = searched_by(victim, postgres_url, "tiny", trials_at_least=3)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    before = completed_params(postgres_url, layer)  # all it finished, up to the kill

    code, text = finish(starter)

    assert code == 0, text
    assert best_mappings(out) == single_process_long
    after = completed_params(postgres_url, layer)
    # kept, then continued where it stopped, and stopped where one process did
    assert len(after) == 30 and after[:len(before)] == before
    states = [t.state for t in leases(postgres_url, "tiny") if t.user_attrs["name"] == layer]
    assert states.count(TrialState.COMPLETE) == 1 and TrialState.FAIL in states  # the victim's lease failed


@needs_postgres
def test_a_worker_stalled_past_its_heartbeats_hands_its_search_over_without_writing_into_it(
        tmp_path: Path, postgres_url: str, single_process_long: dict[str, list]) -> None:
    """As after an outage longer than three heartbeats: another worker takes the search
    over, and the stalled one, running again, stops it instead of writing into it."""
    specs, out = write_specs(tmp_path), tmp_path / "out"
    starter = start("search", *specs, "-o", str(out), *LONG_BUDGET, "--storage", postgres_url, "--job", "tiny",
                    "--heartbeat", str(HEARTBEAT))
    wait_for_job(postgres_url, "tiny")
    stalled = start("worker", "--storage", postgres_url, "--job", "tiny", "--jobs", "1")
    layer = searched_by(stalled, postgres_url, "tiny", trials_at_least=2)
    stalled.send_signal(signal.SIGSTOP)
    try:
        assert searched_by(starter, postgres_url, "tiny", trials_at_least=0, layer=layer) == layer  # taken over
    finally:
        stalled.send_signal(signal.SIGCONT)
    results = [finish(starter), finish(stalled)]

    assert [code for code, _ in results] == [0, 0], results
    assert "Traceback" not in "".join(text for _, text in results)
    assert best_mappings(out) == single_process_long
    for name in SEARCHED:  # no trial counted twice, none missing
        assert len(completed_params(postgres_url, name)) == 30


def searched_by(process: subprocess.Popen[str], url: str, job: str, trials_at_least: int,
                layer: str | None = None) -> str:
    """The layer `process` searches (`layer`, if given), once its study has
    `trials_at_least` completed trials."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for lease in leases(url, job):
            if (lease.state == TrialState.RUNNING and lease.user_attrs.get("worker", "").endswith(f":{process.pid}")
                    and lease.user_attrs["name"] == (layer or lease.user_attrs["name"])):
                if len(completed_params(url, lease.user_attrs["name"])) >= trials_at_least:
                    return lease.user_attrs["name"]
        assert process.poll() is None, finish(process)
        time.sleep(0.1)
    raise AssertionError("the worker never reached the middle of a search")


@needs_postgres
def test_an_interrupted_shared_search_says_how_to_resume_without_the_password_and_resumes(
        tmp_path: Path, postgres_url: str, single_process_long: dict[str, list]) -> None:
    args = ["search", *write_specs(tmp_path), "-o", str(tmp_path / "out"), *LONG_BUDGET, "--storage", postgres_url,
            "--job", "tiny", "--heartbeat", str(HEARTBEAT)]
    starter = start(*args)
    wait_for_job(postgres_url, "tiny")
    searched_by(starter, postgres_url, "tiny", trials_at_least=2)
    starter.send_signal(signal.SIGINT)
    code, text = finish(starter)

    assert code == 130, text
    password = postgres_url.split(":")[2].split("@")[0]
    command = shlex.join(["mapper", *(word.replace(password, "***") for word in args)])  # quoted as masked
    assert f"to resume, run (with the password in place of ***): {command}" in text
    assert password not in text and "Traceback" not in text
    assert [t.state for t in leases(postgres_url, "tiny")].count(TrialState.RUNNING) == 0  # handed back at once
    code, text = finish(start(*args))
    assert code == 0, text
    assert best_mappings(tmp_path / "out") == single_process_long


@needs_postgres
def test_a_job_and_its_workers_started_at_once_on_a_fresh_database_finish_with_the_answers_of_one_process(
        tmp_path: Path, single_process: dict[str, list]) -> None:
    """Workers may join at the start: they wait for the job instead of giving up, and
    processes that open a fresh database together do not trip over each other making
    Optuna's tables."""
    specs = write_specs(tmp_path)
    for round_ in range(3):
        with fresh_database() as url:
            out = tmp_path / f"out{round_}"
            processes = [start("search", *specs, "-o", str(out), *BUDGET, "--storage", url, "--job", "tiny",
                               "--heartbeat", str(HEARTBEAT)),
                         *(start("worker", "--storage", url, "--job", "tiny", "--jobs", "1", "--wait", "300")
                           for _ in range(2))]
            results = [finish(p) for p in processes]

            assert [code for code, _ in results] == [0, 0, 0], results
            assert "Traceback" not in "".join(text for _, text in results)
            assert best_mappings(out) == single_process


@needs_postgres_restarts
def test_a_database_restart_mid_job_is_waited_out_and_the_job_ends_with_the_answers_of_one_process(
        tmp_path: Path, postgres_url: str, single_process_long: dict[str, list]) -> None:
    """Down for longer than three heartbeats: the worker that held a search keeps it (or
    stops it, should another have taken it over), and nothing is searched twice."""
    patient = {"MAPPER_STORAGE_RETRY": "600"}
    specs, out = write_specs(tmp_path), tmp_path / "out"
    starter = start("search", *specs, "-o", str(out), *LONG_BUDGET, "--storage", postgres_url, "--job", "tiny",
                    "--heartbeat", str(HEARTBEAT), env=patient)
    wait_for_job(postgres_url, "tiny")
    helper = start("worker", "--storage", postgres_url, "--job", "tiny", "--jobs", "1", env=patient)
    searched_by(starter, postgres_url, "tiny", trials_at_least=2)
    assert TrialState.WAITING in [t.state for t in leases(postgres_url, "tiny")]  # mid-job: searches left
    with server_stopped():
        time.sleep(15)
    results = [finish(starter), finish(helper)]

    assert [code for code, _ in results] == [0, 0], results
    assert "Traceback" not in "".join(text for _, text in results)
    assert best_mappings(out) == single_process_long
    for layer in SEARCHED:  # no trial counted twice, none missing
        assert len(completed_params(postgres_url, layer)) == 30


@needs_postgres_restarts
def test_an_outage_longer_than_the_retry_window_ends_in_one_line_and_the_same_command_resumes(
        tmp_path: Path, postgres_url: str, single_process_long: dict[str, list]) -> None:
    args = ["search", *write_specs(tmp_path), "-o", str(tmp_path / "out"), *LONG_BUDGET, "--storage", postgres_url,
            "--job", "tiny", "--heartbeat", str(HEARTBEAT)]
    starter = start(*args, env={"MAPPER_STORAGE_RETRY": "2"})
    wait_for_job(postgres_url, "tiny")
    searched_by(starter, postgres_url, "tiny", trials_at_least=2)
    with server_stopped():
        code, text = finish(starter)

    assert code == 2, text
    password = postgres_url.split(":")[2].split("@")[0]
    masked = postgres_url.replace(password, "***")
    assert text.strip().splitlines()[-1].startswith(f"error: lost the storage {masked} for 2 s (")
    assert text.strip().endswith("every completed trial is kept; run the same command again to resume")
    assert "Traceback" not in text and password not in text
    code, text = finish(start(*args))
    assert code == 0, text
    assert best_mappings(tmp_path / "out") == single_process_long


@needs_postgres
def test_joining_a_job_that_is_not_there_names_the_jobs_that_are(tmp_path: Path, postgres_url: str) -> None:
    specs = write_specs(tmp_path)
    assert main(["search", *specs, "-o", str(tmp_path / "out"), "--trials", "1", "--jobs", "1",
                 "--storage", postgres_url, "--job", "there"]) == 0
    code, text = finish(start("worker", "--storage", postgres_url, "--job", "elsewhere", "--jobs", "1", "--wait", "0"))
    assert code == 2
    assert "no job 'elsewhere'" in text and "there" in text and "Traceback" not in text
    assert postgres_url.split(":")[2].split("@")[0] not in text


# ---------------------------------------------------------- without a server


def test_a_job_definition_comes_back_from_the_storage_as_it_went_in(tmp_path: Path) -> None:
    """Workers need only the URL and the name: the layers, architecture, constraints and
    settings they read back must be equal to the originals (and so name the same studies)."""
    shipped = shipped_specs_dir()
    specs = load_specs([shipped / "arch" / "eyeriss-like.yaml", shipped / "workloads" / "alexnet.yaml"])
    units = [worker.Unit(f"{p.name}/{preset}", p, specs.architecture,
                         Constraints(preset=preset).resolve(p, specs.architecture), Settings(trials=5, seed=2))
             for p in specs.problems[:3] for preset in PRESETS if preset != "no-local-reuse"]
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    job = worker.make_job("alexnet", units)
    worker.submit(url, job)
    assert worker.load_job(url, "alexnet") == job
    assert worker.job_status(url, "alexnet") == worker.JobStatus(units=len(units), done=0, running=0)


def test_a_job_name_in_use_by_other_searches_is_refused(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["search", *write_layer(tmp_path), "--jobs", "1", "--storage", url, "--job", "mine"]
    assert main([*args, "-o", str(tmp_path / "a"), "--trials", "1"]) == 0
    assert main([*args, "-o", str(tmp_path / "b"), "--trials", "2"]) == 2
    assert "has a job 'mine' with other layers or settings" in capsys.readouterr().err


def test_a_shared_search_needs_a_budget_in_trials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs, url = write_specs(tmp_path), f"sqlite:///{tmp_path / 'jobs.db'}"
    assert main(["search", *specs, "-o", str(tmp_path / "out"), "--time", "5", "--storage", url]) == 2
    assert "needs its budget in trials" in capsys.readouterr().err


def test_a_refused_shared_search_leaves_its_folder_to_the_corrected_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    args = ["search", *write_layer(tmp_path), "--jobs", "1", "--storage", url, "-o", str(tmp_path / "out")]
    assert main([*args, "--time", "5"]) == 2
    assert "needs its budget in trials" in capsys.readouterr().err
    assert main([*args, "--trials", "1"]) == 0


def test_a_job_in_sqlite_does_not_invite_workers_from_other_machines() -> None:
    job = worker.make_job("mine", [])
    assert "add a worker on any machine" in worker.joining_text(job, "postgresql://u@host/db")
    assert "a SQLite file serves one process" in worker.joining_text(job, "sqlite:///jobs.db")
