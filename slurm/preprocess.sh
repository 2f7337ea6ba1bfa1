#!/bin/bash
# Usage: sbatch --array=0-<N-1> slurm/preprocess.sh [--num-shards N] --config configs/jobs/X.yaml [key=value ...]
#
# Tokenizes and packs shard i of N of the config's rows into <packed_dir>/shard-i-of-N/, one array task
# per shard (N is the array's size; slurm/pipeline.sh uses data.num_shards). The task that completes the
# set writes <packed_dir>/manifest.json, which training reads. A complete shard is skipped on a rerun, so
# a failed task can be rerun alone, saying the whole set's size:
#   sbatch --array=3 slurm/preprocess.sh --num-shards 8 --config configs/jobs/X.yaml
# Tokenizer workers per task: data.num_proc (0 = the task's cores; ask for them with --cpus-per-task).
# Submit from the repository root, in the environment that has fcdist. Log:
# runs/<name>/slurm/preprocess-<arrayjob>_<task>.out (see slurm/train.sh on SLURM's own --output).
#SBATCH --job-name=fcdist-preprocess
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --open-mode=append
# --requeue: after a node failure or a preemption SLURM runs it again; the stage is safe to rerun.
set -euo pipefail

# A bad config, or a task outside the set of shards, fails here with the reason.
vars=$(python -m fcdist.submit job-env preprocess "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS SHARD NUM_SHARDS
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job ${SLURM_ARRAY_JOB_ID}_$SLURM_ARRAY_TASK_ID, shard $SHARD of $NUM_SHARDS: slurm/preprocess.sh $(printf '%q ' "$@")"

# `fcdist preprocess --shard SHARD --num-shards NUM_SHARDS` with the config (the chain: fcdist/stages.py)
python -m fcdist.stages run preprocess --shard "$SHARD" --num-shards "$NUM_SHARDS" "${CONFIG_ARGS[@]}"
