#!/bin/bash
# Usage: sbatch slurm/score.sh [--num-shards M] --config configs/jobs/X.yaml [key=value ...]
#
# `fcdist score` of runs/<name>/predictions.jsonl against the held-out rows, into
# runs/<name>/score/report.json (and report.md). With --num-shards M (the infer array's size) it first
# merges the M shard files again: the last infer task merged them already, and this fails the job,
# naming the rows, if any held-out row is missing or answered twice. Submit from the repository root,
# in the environment that has fcdist. Log: runs/<name>/slurm/score-<jobid>.out (see slurm/train.sh).
#SBATCH --job-name=fcdist-score
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --open-mode=append
# --requeue: after a node failure or a preemption SLURM runs it again; the stage is safe to rerun.
set -euo pipefail

vars=$(python -m fcdist.submit job-env score "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS NUM_SHARDS
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job $SLURM_JOB_ID: slurm/score.sh $(printf '%q ' "$@")"

# `fcdist infer --merge-shards` when NUM_SHARDS > 1, then `fcdist score --gold <packed_dir>/heldout.jsonl
# --predictions RUN/predictions.jsonl --out RUN/score/report.json` (the chain: fcdist/stages.py)
python -m fcdist.stages run score --num-shards "$NUM_SHARDS" "${CONFIG_ARGS[@]}"
