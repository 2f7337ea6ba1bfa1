"""What the SLURM templates and `fcdist submit` would run, without a cluster: the accelerate launch of each
node, the rendezvous, the job variables a template evals, and the sbatch chains of slurm/pipeline.sh and
`fcdist submit` (against a fake sbatch that records its calls). The real runs are in tests/cluster."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fcdist import stages, submit
from fcdist.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
TINY = "configs/jobs/tiny-cpu.yaml"
TEMPLATES = ["train", "preprocess", "gather", "infer", "score", "bfcl-convert", "bfcl-infer", "bfcl-score", "pipeline"]


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the templates' working directory: relative configs and launch/train.py


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """``make(name, script)`` puts an executable ``name`` running the bash ``script`` first on PATH."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def make(name: str, script: str) -> Path:
        path = folder / name
        path.write_text("#!/bin/bash\n" + script)
        path.chmod(0o755)
        return path

    return make


def slurm_env(monkeypatch, **values):
    for key in [k for k in os.environ if k.startswith("SLURM_")]:
        monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, str(value))


# ---------------------------------------------------------------- the launch of one node


def test_two_node_launch_is_a_c10d_rendezvous_hosted_by_node_zero():
    command = stages.accelerate_command("configs/accelerate/multinode_ddp.yaml", ["--config", "C", "train.max_steps=5"],
                                        num_machines=2, procs_per_node=4, machine_rank=1, head="10.0.0.7", port=12345)
    assert command == [sys.executable, "-m", "accelerate.commands.launch",
                       "--config_file", "configs/accelerate/multinode_ddp.yaml",
                       "--num_machines", "2", "--num_processes", "8", "--main_process_port", "12345",
                       "--machine_rank", "1", "--main_process_ip", "10.0.0.7", "--rdzv_backend", "c10d",
                       "--rdzv_conf", "is_host=0",
                       "launch/train.py", "--config", "C", "train.max_steps=5"]
    assert "is_host=1" in stages.accelerate_command("x.yaml", [], num_machines=2, procs_per_node=1, machine_rank=0,
                                                    head="h", port=1)


def test_one_node_launch_needs_no_rendezvous():
    command = stages.accelerate_command("configs/accelerate/multi_gpu.yaml", ["--config", "C"], num_machines=1,
                                        procs_per_node=8, machine_rank=0, head="h", port=10099)
    assert command[3:] == ["--config_file", "configs/accelerate/multi_gpu.yaml", "--num_machines", "1",
                           "--num_processes", "8", "--main_process_port", "10099", "launch/train.py", "--config", "C"]


def test_port_comes_from_the_job_id_below_the_ephemeral_range():
    assert submit.rendezvous_port(1234) == submit.rendezvous_port("1234") == 11234
    assert all(10000 <= submit.rendezvous_port(job) < 30000 for job in (0, 19999, 20000, 987654321))


def test_head_is_the_first_node_by_name_when_it_resolves(fake_bin):
    fake_bin("scontrol", 'case "$2" in hostnames) printf "localhost\\nother\\n" ;; node) exit 9 ;; esac\n')
    assert submit.head_address("localhost,other") == "localhost"


def test_head_falls_back_to_nodeaddr_when_the_name_does_not_resolve(fake_bin):
    fake_bin("scontrol", 'case "$2" in\n'
                         '  hostnames) printf "fcnode1.invalid\\nfcnode2.invalid\\n" ;;\n'
                         '  node) echo "NodeName=$3 Arch=x86_64 CoresPerSocket=1"; echo "   NodeAddr=10.1.2.3 NodeHostName=vm" ;;\n'
                         'esac\n')
    assert submit.head_address("fcnode[1-2].invalid") == "10.1.2.3"


def test_gpus_count_only_where_the_node_has_real_ones(fake_bin, monkeypatch):
    slurm_env(monkeypatch, SLURM_GPUS_ON_NODE=4)
    fake_bin("nvidia-smi", "exit 9\n")  # fake GRES: SLURM says 4, there is no driver
    assert submit.usable_gpus() == 0
    fake_bin("nvidia-smi", 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-x)"\n')
    assert submit.usable_gpus() == 4
    monkeypatch.delenv("SLURM_GPUS_ON_NODE")  # GPUs on the node, none given to the job
    assert submit.usable_gpus() == 0


def test_node_command_reads_the_node_from_slurm(fake_bin, monkeypatch, at_root):
    fake_bin("scontrol", 'case "$2" in hostnames) echo fcnode1.invalid ;; node) echo "NodeAddr=127.0.0.1" ;; esac\n')
    fake_bin("nvidia-smi", "exit 9\n")
    slurm_env(monkeypatch, SLURM_NNODES=2, SLURM_NODEID=1, SLURM_JOB_ID=77, SLURM_JOB_NODELIST="fcnode[1-2].invalid",
              SLURM_CPUS_ON_NODE=6, SLURM_GPUS_ON_NODE=2)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    args = ["--config", TINY, "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"]
    command, env = submit.node_command(args)
    assert command == stages.accelerate_command("configs/accelerate/multinode_cpu.yaml", args, num_machines=2,
                                                procs_per_node=1, machine_rank=1, head="127.0.0.1", port=10077)
    assert env["OMP_NUM_THREADS"] == "6"  # one CPU process gets the node's cores
    local, _ = submit.node_command(["--config", TINY], slurm=False)
    assert local[3:] == ["--config_file", "configs/accelerate/cpu_multiprocess.yaml", "launch/train.py", "--config", TINY]


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs" / "accelerate").glob("*.yaml")))
def test_only_multinode_accelerate_configs_pass_for_several_nodes(name):
    path = f"{ROOT}/configs/accelerate/{name}"
    submit.check_accelerate_config(path, 1)
    if name.startswith("multinode_"):
        submit.check_accelerate_config(path, 2)
    else:
        with pytest.raises(submit.SubmitError, match="one-machine Accelerate config"):
            submit.check_accelerate_config(path, 2)


# ---------------------------------------------------------------- what a template's job knows


def test_a_rerun_array_task_takes_its_shard_of_the_given_count(tmp_path, monkeypatch, at_root):
    # --array=3 --num-shards 8; the rule itself, and the arrays it refuses: tests/unit/test_runtime.py
    slurm_env(monkeypatch, SLURM_JOB_ID=70, SLURM_ARRAY_JOB_ID=69, SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_MIN=3,
              SLURM_ARRAY_TASK_MAX=3, SLURM_ARRAY_TASK_COUNT=1)
    values = submit.job_env("infer", ["--config", TINY, f"output.root={tmp_path}"], num_shards=8)
    assert (values["SHARD"], values["NUM_SHARDS"], values["LOG"]) == ("3", "8", f"{tmp_path}/tiny-cpu/slurm/infer-69_3.out")


def test_array_stage_refuses_a_job_outside_an_array(tmp_path, monkeypatch, at_root):
    slurm_env(monkeypatch, SLURM_JOB_ID=1)
    with pytest.raises(submit.SubmitError, match="slurm/infer.sh is not an array task"):
        submit.job_env("infer", ["--config", TINY, f"output.root={tmp_path}"])


def eval_in_bash(assignments: str, *names: str) -> list[str]:
    """What bash holds after eval-ing job-env's output: one line per value (array items one per line)."""
    script = assignments + "\n" + "\n".join(f'printf "%s\\n" "${{{n}[@]}}"' for n in names)
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.splitlines()


def test_job_env_for_train(tmp_path, monkeypatch, at_root):
    slurm_env(monkeypatch, SLURM_JOB_ID=42, SLURM_NNODES=2)
    args = ["--config", TINY, f"output.root={tmp_path}/my runs", "output.name=it's",
            "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"]
    values = submit.job_env("train", args)
    run = f"{tmp_path}/my runs/it's"
    assert values == {"RUN": run, "CONFIG_ARGS": args, "STOP_FILE": f"{run}/STOP", "DONE_FILE": f"{run}/DONE",
                      "LOG": f"{run}/slurm/train-42.out"}
    assert Path(run, "slurm").is_dir()  # created before the job redirects its log there
    # Quoted for bash: spaces and quotes survive, and the arguments stay separate words.
    assert eval_in_bash(submit.shell_assignments(values), "RUN", "CONFIG_ARGS") == [run, *args]


def test_job_env_for_array_stages_names_the_log_after_the_array(tmp_path, monkeypatch, at_root):
    slurm_env(monkeypatch, SLURM_JOB_ID=60, SLURM_ARRAY_JOB_ID=57, SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_MIN=0,
              SLURM_ARRAY_TASK_MAX=3, SLURM_ARRAY_TASK_COUNT=4)
    values = submit.job_env("infer", ["--config", TINY, f"output.root={tmp_path}"])
    assert (values["SHARD"], values["NUM_SHARDS"], values["LOG"]) == ("3", "4", f"{tmp_path}/tiny-cpu/slurm/infer-57_3.out")


@pytest.mark.parametrize("args, message", [
    (["--config", "configs/jobs/missing.yaml"], "no such file: configs/jobs/missing.yaml"),
    (["--config", TINY, "train.max_stepz=3"], "unknown key 'train.max_stepz'"),
    (["--config", TINY, "train.max_steps=many"], "'train.max_steps' = 'many' is invalid"),
])
def test_job_env_refuses_a_bad_config_naming_it(tmp_path, monkeypatch, at_root, args, message):
    slurm_env(monkeypatch, SLURM_JOB_ID=1)
    with pytest.raises(ConfigError, match=message):
        submit.job_env("gather", args + [f"output.root={tmp_path}"])


def test_job_env_refuses_one_machine_accelerate_config_on_several_nodes(tmp_path, monkeypatch, at_root):
    slurm_env(monkeypatch, SLURM_JOB_ID=1, SLURM_NNODES=2)
    with pytest.raises(submit.SubmitError, match="multinode_cpu.yaml on nodes without GPUs"):
        submit.job_env("train", ["--config", TINY, f"output.root={tmp_path}"])
    with pytest.raises(submit.SubmitError, match="one-machine"):
        stages.prepare(["--config", TINY, f"output.root={tmp_path}"], stages.Request(nodes=2), slurm=False)


def test_job_env_wants_the_repository_root_and_a_batch_job(tmp_path, monkeypatch, at_root):
    slurm_env(monkeypatch)
    with pytest.raises(submit.SubmitError, match="submit it with sbatch"):
        submit.job_env("gather", ["--config", TINY, f"output.root={tmp_path}"])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(submit.SubmitError, match="repository root"):
        submit.job_env("gather", ["--config", f"{ROOT}/{TINY}"])


def test_job_env_command_prints_bash_or_fails_with_the_reason(tmp_path):
    base = [sys.executable, "-m", "fcdist.submit", "job-env", "score", "--num-shards", "3", "--config", TINY,
            f"output.root={tmp_path}"]
    ok = subprocess.run(base, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "SLURM_JOB_ID": "5"})
    assert ok.returncode == 0 and eval_in_bash(ok.stdout, "NUM_SHARDS", "LOG") == ["3", f"{tmp_path}/tiny-cpu/slurm/score-5.out"]
    bad = subprocess.run(base + ["lora.rank=4"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("fcdist job-env: error:") and "unknown key 'lora.rank'" in bad.stderr


# ---------------------------------------------------------------- the templates


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_opens_with_its_usage_and_is_clean_bash(name):
    path = ROOT / "slurm" / f"{name}.sh"
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/bin/bash" and lines[1].startswith("# Usage: ") and f"slurm/{name}.sh" in lines[1]
    subprocess.run(["bash", "-n", str(path)], check=True)
    if shutil.which("shellcheck"):
        subprocess.run(["shellcheck", str(path)], check=True)


def test_train_template_asks_slurm_for_what_its_recovery_needs():
    """The template's signal line is the one preemption protocol fcdist submit follows too (stages.PREEMPT_*)."""
    text = (ROOT / "slurm" / "train.sh").read_text()
    signal = f"#SBATCH --signal=B:{stages.PREEMPT_SIGNAL}@{stages.PREEMPT_MARGIN_S}"
    trap = f"trap 'stop_and_requeue {stages.PREEMPT_SIGNAL}' {stages.PREEMPT_SIGNAL}"
    for line in ("#SBATCH --ntasks-per-node=1", signal, trap, "#SBATCH --requeue",
                 "#SBATCH --open-mode=append", 'srun --kill-on-bad-exit=1 python -m fcdist.submit node-launch "${CONFIG_ARGS[@]}" &',
                 'scontrol requeue "$SLURM_JOB_ID"'):
        assert line in text


def pipeline_chain(tmp_path, fake_bin, *options: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run slurm/pipeline.sh against a fake sbatch that logs each call and answers ids 101, 102, ..."""
    calls = tmp_path / "sbatch.calls"
    fake_bin("sbatch", f'echo "$*" >> {calls}\n'
                       '[[ $1 != --test-only ]] || { echo "sbatch: Job 100 to start at once" >&2; exit 0; }\n'
                       f'echo $(( $(grep -vc -- --test-only {calls}) + 100 ))\n')
    fake_bin("scancel", f'echo "scancel $*" >> {calls}\n')
    fake_bin("python", f'exec {sys.executable} "$@"\n')
    proc = subprocess.run(["bash", "slurm/pipeline.sh", *options], cwd=ROOT, capture_output=True, text=True)
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_pipeline_submits_the_chain_with_dependencies(tmp_path, fake_bin):
    """pipeline.sh submits exactly the chain's sbatch commands (fcdist/stages.py), each after the id sbatch gave
    the stage it waits for; the chain's own content is tested in tests/unit/test_stages.py."""
    root = f"{tmp_path}/my runs; $(touch {tmp_path}/pwned) 'x'"
    args = ["--config", TINY, f"output.root={root}", "distributed.accelerate_config=configs/accelerate/multinode_ddp.yaml"]
    proc, calls = pipeline_chain(tmp_path, fake_bin, "--nodes=2", "--gpus-per-node=4", "--time=2:00:00",
                                 "--infer-shards=3", *args)
    assert proc.returncode == 0, proc.stderr
    assert calls[0] == "--test-only --ntasks-per-node=1 --nodes=2 --gpus-per-node=4 --time=2:00:00 --wrap true"
    chain = stages.sbatch_jobs(args, stages.Request(nodes=2, gpus_per_node=4, time="2:00:00", infer_shards=3))
    ids = {job.stage: str(101 + n) for n, job in enumerate(chain)}
    assert calls[1:] == [" ".join(job.argv(ids.get(job.after))[1:]) for job in chain]
    logs = f"{root}/tiny-cpu/slurm"
    assert proc.stdout.splitlines()[1:] == [f"{job.stage} {ids[job.stage]}" for job in chain] + [f"logs: {logs}"]
    assert Path(logs).is_dir() and not (tmp_path / "pwned").exists()


def test_pipeline_submits_nothing_for_a_bad_config(tmp_path, fake_bin):
    proc, calls = pipeline_chain(tmp_path, fake_bin, "--config", TINY, f"output.root={tmp_path}", "train.max_stepz=3")
    assert proc.returncode == 1 and calls == []
    assert "unknown key 'train.max_stepz'" in proc.stderr
    proc, calls = pipeline_chain(tmp_path, fake_bin, "--nodes=2", "--config", TINY, f"output.root={tmp_path}")
    assert proc.returncode == 1 and calls == [] and "one-machine Accelerate config" in proc.stderr
    proc, calls = pipeline_chain(tmp_path, fake_bin, "--gpus=2", "--config", TINY)
    assert proc.returncode == 2 and calls == [] and "unknown option '--gpus=2'" in proc.stderr


def test_pipeline_refuses_a_request_slurm_cannot_meet_before_submitting(tmp_path, fake_bin):
    calls = tmp_path / "sbatch.calls"
    fake_bin("sbatch", f'echo "$*" >> {calls}\n'
                       'echo "allocation failure: Requested node configuration is not available" >&2; exit 1\n')
    fake_bin("python", f'exec {sys.executable} "$@"\n')
    proc = subprocess.run(["bash", "slurm/pipeline.sh", "--nodes=4", "--config", TINY, f"output.root={tmp_path}",
                           "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and "Requested node configuration is not available" in proc.stderr
    assert [call.split()[0] for call in calls.read_text().splitlines()] == ["--test-only"]


def test_pipeline_and_submit_refuse_what_fcdist_plan_refuses_before_asking_slurm(tmp_path, fake_bin):
    """3 nodes cannot split the tiny job's batch of 8: refused by `fcdist plan --check`, sbatch never called."""
    calls = tmp_path / "sbatch.calls"
    fake_bin("sbatch", f'echo "$*" >> {calls}\n')
    fake_bin("python", f'exec {sys.executable} "$@"\n')
    args = ["--nodes=3", "--config", TINY, f"output.root={tmp_path}",
            "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"]
    proc = subprocess.run(["bash", "slurm/pipeline.sh", *args], cwd=ROOT, capture_output=True, text=True)
    refusal = "train.global_batch_size=8 cannot be split evenly over 3 processes"
    assert proc.returncode == 1 and f"fcdist plan: cannot run: {refusal}" in proc.stderr and not calls.exists()
    proc = subprocess.run([sys.executable, "-m", "fcdist.cli", "submit", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and refusal in proc.stderr and not calls.exists()


def test_pipeline_cancels_what_it_submitted_when_a_submission_fails(tmp_path, fake_bin):
    calls = tmp_path / "sbatch.calls"
    fake_bin("sbatch", f'echo "$*" >> {calls}\n'
                       '[[ $1 != --test-only ]] || exit 0\n'
                       'if [[ $* == *gather.sh* ]]; then echo "sbatch: error: Batch job submission failed: '
                       'Invalid account" >&2; exit 1; fi\n'
                       f'echo $(( $(grep -vc -- --test-only {calls}) + 100 ))\n')
    fake_bin("scancel", f'echo "scancel $*" >> {calls}\n')
    fake_bin("python", f'exec {sys.executable} "$@"\n')
    proc = subprocess.run(["bash", "slurm/pipeline.sh", "--config", TINY, f"output.root={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Invalid account" in proc.stderr and "cancelled 101 102" in proc.stderr
    assert calls.read_text().splitlines()[-1] == "scancel 101 102"


# ---------------------------------------------------------------- fcdist submit


def test_submit_chains_the_stages_on_slurm(tmp_path, fake_bin, monkeypatch, at_root):
    calls = tmp_path / "sbatch.calls"
    fake_bin("srun", "exit 0\n")  # submitit looks for it to believe it is on a cluster
    fake_bin("sbatch", f'if [[ $1 == --test-only ]]; then echo "$*" >> {calls}; exit 0; fi\n'
                       f'n=$(( $(ls {tmp_path}/script-* 2>/dev/null | wc -l) + 201 ))\n'
                       f'cp "${{@: -1}}" {tmp_path}/script-$n\necho "Submitted batch job $n"\n')
    args = ["--config", TINY, f"output.root={tmp_path}", "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"]
    jobs = submit.submit_pipeline(args, "slurm", nodes=2, infer_shards=3, timeout_min=30)
    assert {stage: [job.job_id for job in group] for stage, group in jobs.items()} == {
        "preprocess": ["201_0", "201_1"], "train": ["202"], "gather": ["203"], "infer": ["204_0", "204_1", "204_2"],
        "score": ["205"]}
    scripts = [(tmp_path / f"script-{n}").read_text() for n in range(201, 206)]
    assert "#SBATCH --array=0-1%2" in scripts[0] and "--dependency" not in scripts[0]
    train = scripts[1]
    for line in ("#SBATCH --dependency=afterok:201_0:201_1", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --requeue", "#SBATCH --kill-on-invalid-dep=yes",
                 f"#SBATCH --signal={stages.PREEMPT_SIGNAL}@{stages.PREEMPT_MARGIN_S}",
                 "#SBATCH --time=30", "#SBATCH --job-name=fcdist-train"):
        assert line in train.splitlines()
    assert "srun --unbuffered" in train and "--kill-on-bad-exit=1" in train
    assert "#SBATCH --dependency=afterok:202" in scripts[2]
    assert "#SBATCH --dependency=afterok:203" in scripts[3] and "#SBATCH --array=0-2%3" in scripts[3]
    assert "#SBATCH --dependency=afterok:204_0:204_1:204_2" in scripts[4]
    assert calls.read_text() == "--test-only --ntasks-per-node=1 --nodes=2 --time=30 --wrap true\n"


def test_submit_refuses_bad_input_before_submitting(tmp_path, capsys, at_root):
    assert submit.main(["--config", TINY, f"output.root={tmp_path}", "lora.rank=4"]) == 1
    assert "fcdist submit: error:" in capsys.readouterr().err
    assert submit.main(["--cluster", "local", "--nodes", "2", "--config", TINY, f"output.root={tmp_path}",
                        "distributed.accelerate_config=configs/accelerate/multinode_cpu.yaml"]) == 1
    assert "runs on this machine only" in capsys.readouterr().err
    assert not (tmp_path / "tiny-cpu" / "submitit").exists()


def test_train_task_checkpoint_stops_the_trainer_and_requeues_the_same_call(tmp_path, at_root):
    """The trainer's side is played by a process that exits 0 once the run's STOP file appears."""
    args = ["--config", TINY, f"output.root={tmp_path}"]
    run = tmp_path / "tiny-cpu"
    run.mkdir()
    task = submit.TrainTask(slurm=True)
    task.launcher = subprocess.Popen([sys.executable, "-c", "import os, time\n"
                                      f"while not os.path.exists({str(run / 'STOP')!r}): time.sleep(0.05)"])
    started = time.monotonic()
    delayed = task.checkpoint(args)
    assert time.monotonic() - started < 30
    assert task.launcher is None and not (run / "STOP").exists()  # a leftover STOP would stop the next run at once
    again = pickle.loads(pickle.dumps(delayed))
    assert isinstance(again.function, submit.TrainTask) and again.args == (args,) and again.function.slurm
