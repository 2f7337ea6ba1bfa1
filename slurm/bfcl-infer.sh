#!/bin/bash
# Usage: sbatch --array=0-<M-1> [--gpus-per-node=1] slurm/bfcl-infer.sh [--num-shards M] --config configs/jobs/X.yaml [key=value ...]
#
# `fcdist infer` with the run's gathered model on shard i of M of the BFCL cases (runs/<name>/bfcl/gold.jsonl),
# as slurm/infer.sh does for the held-out rows: resumable, one array task per shard, the shard that completes
# the set merges them into runs/<name>/bfcl/predictions.jsonl. Submit from the repository root, in the
# environment that has fcdist. Log: runs/<name>/slurm/bfcl-infer-<arrayjob>_<task>.out (see slurm/train.sh).
#SBATCH --job-name=fcdist-bfcl-infer
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --open-mode=append
# --requeue: after a node failure or a preemption SLURM runs it again; the stage is safe to rerun.
set -euo pipefail

vars=$(python -m fcdist.submit job-env bfcl-infer "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS SHARD NUM_SHARDS
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job ${SLURM_ARRAY_JOB_ID}_$SLURM_ARRAY_TASK_ID, shard $SHARD of $NUM_SHARDS: slurm/bfcl-infer.sh $(printf '%q ' "$@")"

# `fcdist infer --run RUN --data RUN/bfcl/gold.jsonl --out RUN/bfcl/predictions.jsonl --shard SHARD
# --num-shards NUM_SHARDS` with the config (the chain: fcdist/stages.py)
python -m fcdist.stages run bfcl-infer --shard "$SHARD" --num-shards "$NUM_SHARDS" "${CONFIG_ARGS[@]}"
