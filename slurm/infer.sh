#!/bin/bash
# Usage: sbatch --array=0-<M-1> [--gpus-per-node=1] slurm/infer.sh [--num-shards M] --config configs/jobs/X.yaml [key=value ...]
#
# `fcdist infer` with the run's gathered adapter on shard i of M of the held-out rows
# (<packed_dir>/heldout.jsonl), one array task per shard, into runs/<name>/predictions.shard-i-of-M.jsonl;
# the shard that completes the set merges them into runs/<name>/predictions.jsonl. A task resumes the
# rows its shard already has, so a failed task can be rerun alone, saying the whole set's size:
#   sbatch --array=3 slurm/infer.sh --num-shards 8 --config configs/jobs/X.yaml
# Each task uses one GPU if it is given one, else the CPU. Submit from the repository root, in the
# environment that has fcdist. Log: runs/<name>/slurm/infer-<arrayjob>_<task>.out (see slurm/train.sh).
#SBATCH --job-name=fcdist-infer
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --open-mode=append
# --requeue: after a node failure or a preemption SLURM runs it again; the stage is safe to rerun.
set -euo pipefail

vars=$(python -m fcdist.submit job-env infer "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS SHARD NUM_SHARDS
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job ${SLURM_ARRAY_JOB_ID}_$SLURM_ARRAY_TASK_ID, shard $SHARD of $NUM_SHARDS: slurm/infer.sh $(printf '%q ' "$@")"

# `fcdist infer --run RUN --data <packed_dir>/heldout.jsonl --out RUN/predictions.jsonl --shard SHARD
# --num-shards NUM_SHARDS` with the config (the chain: fcdist/stages.py)
python -m fcdist.stages run infer --shard "$SHARD" --num-shards "$NUM_SHARDS" "${CONFIG_ARGS[@]}"
