"""The real SLURM cluster on this machine (slurm/local-cluster.sh), as a pytest fixture.

Run: `pytest -q tests/cluster` as root, after `slurm/local-cluster.sh install`.
`slurm_cluster` starts the cluster if `local-cluster.sh status` says it is not up, and stops it at the
end of the session only if it started it. A machine that cannot run it (not root, no slurm-wlm) skips
these tests, unless FCDIST_REQUIRE_SLURM=1 (CI sets it): then they fail, so a CI machine that lost its
cluster cannot pass by skipping. Every test in this folder gets the `slurm` marker.
Environment: FCDIST_SLURM_DIR and FCDIST_SLURM_PORT go to the script; FCDIST_SLURM_GPUS (2) is the
number of fake GPUs per node when this fixture starts the cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parents[1] / "slurm" / "local-cluster.sh"
# What the cluster needs on PATH; the daemons live in sbin, which a CI shell may lack.
BINARIES = ["slurmctld", "slurmd", "slurmdbd", "sbatch", "srun", "sacct", "squeue", "munge", "mysqld_safe"]
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
# sacct/squeue states after which a job will not run again.
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
SACCT_FIELDS = ["JobID", "JobName", "State", "ExitCode", "NodeList"]


def pytest_collection_modifyitems(config, items):
    # This hook sees every collected test, not only this folder's: mark just ours.
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slurm)


@dataclass
class SlurmCluster:
    """Handle on the running cluster; every helper talks to it through `conf` (SLURM_CONF)."""

    conf: Path  # slurm.conf of the cluster, also exported as SLURM_CONF for the session
    dir: Path  # FCDIST_SLURM_DIR: configs, logs (dir/log), spool, state
    nodes: list[str] = field(default_factory=list)  # node names, sorted (fcnode1, fcnode2)
    gpus_per_node: int = 0  # fake GPUs per node (0 when the cluster was started without --gpus)

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        env = dict(os.environ, SLURM_CONF=str(self.conf))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    def sbatch(self, args: list[str], cwd: str | os.PathLike) -> int:
        """Submit; returns the job id. Create the --output folder first: SLURM fails a job silently without it."""
        proc = subprocess.run(["sbatch", "--parsable", *args], cwd=cwd, env=dict(os.environ, SLURM_CONF=str(self.conf)),
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return int(proc.stdout.strip().split(";")[0])  # "id" or "id;cluster"

    def sacct(self, job_id: int) -> list[dict]:
        """The job and its steps (JobID 'N', 'N.batch', 'N.0', ...): JobID, JobName, State, ExitCode, NodeList.
        State is its first word ('CANCELLED by 0' -> 'CANCELLED')."""
        out = self.run("sacct", "-j", str(job_id), "-n", "-P", "-o", ",".join(SACCT_FIELDS)).stdout
        rows = [dict(zip(SACCT_FIELDS, line.split("|"))) for line in out.splitlines() if line.strip()]
        for row in rows:
            row["State"] = row["State"].split()[0] if row["State"] else ""
        return rows

    def state(self, job_id: int) -> str:
        """The job's state now: from sacct, or from squeue while slurmdbd has not recorded it yet ('' if neither knows)."""
        out = self.run("sacct", "-j", str(job_id), "-X", "-n", "-P", "-o", "State", check=False).stdout.split()
        if out:
            return out[0]
        out = self.run("squeue", "-h", "-t", "all", "-j", str(job_id), "-o", "%T", check=False).stdout.split()
        return out[0] if out else ""

    def wait(self, job_id: int, timeout_s: float = 120) -> str:
        """Wait until the job is over; returns its final state (COMPLETED, FAILED, ...). Raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while (state := self.state(job_id)) not in FINAL:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {state or 'unknown'} after {timeout_s}s; "
                                   f"squeue: {self.run('squeue', '-j', str(job_id), check=False).stdout.strip()}")
            time.sleep(0.5)
        # slurmdbd records the steps a moment apart from the job: give them a few seconds to land.
        settle = time.monotonic() + 10
        while any(r["State"] in ("RUNNING", "PENDING", "COMPLETING") for r in self.sacct(job_id)) and time.monotonic() < settle:
            time.sleep(0.5)
        return state


def _cannot_run() -> str | None:
    """Why this machine cannot run the cluster, or None."""
    if os.geteuid() != 0:
        return "needs root (the local SLURM cluster starts munge, MariaDB and SLURM daemons)"
    missing = [b for b in BINARIES if not shutil.which(b, path=SEARCH_PATH)]
    if missing:
        return f"slurm binaries missing ({', '.join(missing)}); run: slurm/local-cluster.sh install"
    return None


def _script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=SEARCH_PATH)
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = _cannot_run()
    if reason:
        if os.environ.get("FCDIST_REQUIRE_SLURM") == "1":
            pytest.fail(f"FCDIST_REQUIRE_SLURM=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    os.environ["PATH"] = SEARCH_PATH  # so tests and the code under test find srun, scontrol, ...
    started = _script("status").returncode != 0
    if started:
        gpus = os.environ.get("FCDIST_SLURM_GPUS", "2")
        proc = _script("start", "--gpus", gpus)
        if proc.returncode != 0:
            pytest.fail(f"slurm/local-cluster.sh start failed:\n{proc.stdout}{proc.stderr}", pytrace=False)
    status = _script("status")  # ends with the line to use: export SLURM_CONF=...
    if status.returncode != 0:
        pytest.fail(f"the local SLURM cluster is not up:\n{status.stdout}{status.stderr}", pytrace=False)
    conf = Path(status.stdout.rsplit("export SLURM_CONF=", 1)[-1].split()[0])
    os.environ["SLURM_CONF"] = str(conf)
    cluster = SlurmCluster(conf=conf, dir=conf.parent.parent)
    cluster.nodes = sorted(cluster.run("sinfo", "-h", "-N", "-o", "%N").stdout.split())
    gres = cluster.run("sinfo", "-h", "-o", "%G").stdout  # e.g. "gpu:2" or "(null)"
    match = re.search(r"gpu:(?:\w+:)?(\d+)", gres)
    cluster.gpus_per_node = int(match.group(1)) if match else 0
    yield cluster
    if started:
        proc = _script("stop")
        if proc.returncode != 0:
            print(f"slurm/local-cluster.sh stop failed:\n{proc.stdout}{proc.stderr}")



@pytest.fixture(scope="session")
def bfcl():
    """For a pipeline test that ends with the BFCL stages: ``bfcl.override`` names the hand-written BFCL folder
    as a user would (eval.bfcl_dir, relative to the repository root, where the jobs run); ``bfcl.check(run)``
    asserts that the run's BFCL report (runs/<name>/bfcl/) scored, by BFCL's rules, every case it read per
    category, and lays them out in the leaderboard's columns."""
    from fcdist.data.bfcl import category_files

    folder = "tests/fixtures/bfcl"
    files = category_files(HERE.parents[1] / folder)
    expected = {name: sum(1 for line in path.read_text().splitlines() if line.strip()) for name, path in files.items()}

    def check(run: Path) -> None:
        report_file = run / "bfcl" / "report.json"
        assert report_file.is_file(), f"no BFCL report in {run / 'bfcl'}"
        report = json.loads(report_file.read_text())
        assert report["rules"] == "bfcl"
        assert report["cases"]["by_category"] == {name: {"read": n, "converted": n} for name, n in expected.items()}
        assert {name: rates["n"] for name, rates in report["by_category"].items()} == expected  # scored = read
        total = sum(expected.values())
        assert (report["cases_read"], report["cases_scored"], report["missing_predictions"]) == (total, total, 0)
        markdown = (run / "bfcl" / "report.md").read_text()
        assert "| AST summary | Simple | Multiple | Parallel | Parallel Multiple | Irrelevance |" in markdown
        assert all(f"| {name} | {n} | {n} | 0 |" in markdown for name, n in expected.items()), markdown
        assert f"| all | {total} | {total} | 0 |" in markdown

    return SimpleNamespace(override=f"eval.bfcl_dir={folder}", check=check)
