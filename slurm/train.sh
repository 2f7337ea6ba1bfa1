#!/bin/bash
# Usage: sbatch [--nodes=K] [--gpus-per-node=G] [--time=T] slurm/train.sh --config configs/jobs/X.yaml [key=value ...]
#
# Trains runs/<name>/ (the config's output.root/output.name) on K whole nodes: one `accelerate launch` per
# node, one process per GPU SLURM gives the node (one CPU process where the node has no real GPU), all
# meeting at a c10d rendezvous on the first node. `python -m fcdist.submit node-launch` builds that
# command from SLURM's variables on each node; `fcdist submit` runs the same one. The Accelerate config is
# the job config's distributed.accelerate_config: on several nodes pass one of the multinode configs,
# e.g. distributed.accelerate_config=configs/accelerate/multinode_zero3.yaml (it is recorded in the run).
# Submit from the repository root, in the environment that has fcdist: sbatch hands both to the job.
#
# Time limit: 5 minutes before it SLURM sends USR2 to this shell, the preemption protocol `fcdist submit`
# follows too (README, "On a SLURM cluster"; raise @300 here and PREEMPT_MARGIN_S in fcdist/stages.py if a
# step plus a checkpoint takes longer). The shell creates runs/<name>/STOP, the trainer saves at the next
# step and exits 0, and the job requeues itself unless training is DONE; the next run resumes from
# checkpoints/latest. SIGTERM (preemption, a limit reached unwarned) does the same as far
# as SLURM's KillWait allows, but a user's scancel is never requeued.
#
# Log: runs/<name>/slurm/train-<jobid>.out, appended to by every restart. SLURM's own --output (by default
# slurm-<jobid>.out in the submit folder, which always exists) says where it is and holds any error
# from before the run folder is known; slurm/pipeline.sh points --output at the run's log itself.
#SBATCH --job-name=fcdist-train
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
#SBATCH --signal=B:USR2@300
#SBATCH --requeue
#SBATCH --open-mode=append
# --ntasks-per-node=1: the launcher starts the node's workers. --exclusive: whole nodes, so the workers
# and their data loading get every core (SLURM gives a task one CPU); --oversubscribe undoes it.
set -euo pipefail

# A missing config, an unknown key or a one-machine Accelerate config on several nodes fails here, named.
vars=$(python -m fcdist.submit job-env train "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS STOP_FILE DONE_FILE ...
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job $SLURM_JOB_ID (restart ${SLURM_RESTART_COUNT:-0}) on $SLURM_JOB_NODELIST:" \
    "slurm/train.sh $(printf '%q ' "$@")"

stop_and_requeue() {  # $1: USR2 or TERM
    trap '' USR2 TERM
    echo "fcdist: SIG$1 at $(date +%T): the trainer saves at its next step and stops"
    touch "$STOP_FILE"
    local rc=0
    wait "$srun_pid" || rc=$?
    rm -f "$STOP_FILE"
    [[ ! -f $DONE_FILE ]] || exit "$rc"
    # scancel sends TERM too: on TERM requeue only for the time limit or a preemption.
    if [[ $1 == USR2 ]] || scontrol show job "$SLURM_JOB_ID" | grep -qE 'Reason=TimeLimit|PreemptTime=[0-9]'; then
        echo "fcdist: training is not DONE (step exit $rc): requeued, it resumes from the latest checkpoint"
        scontrol requeue "$SLURM_JOB_ID"
    fi
    exit "$rc"
}
trap 'stop_and_requeue USR2' USR2
trap 'stop_and_requeue TERM' TERM

# In the background so the traps run while it trains (bash runs them only between commands).
# --kill-on-bad-exit: a rank that dies ends the whole job instead of leaving the others in a collective.
srun --kill-on-bad-exit=1 python -m fcdist.submit node-launch "${CONFIG_ARGS[@]}" &
srun_pid=$!
wait "$srun_pid"
