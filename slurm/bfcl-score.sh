#!/bin/bash
# Usage: sbatch slurm/bfcl-score.sh [--num-shards M] --config configs/jobs/X.yaml [key=value ...]
#
# `fcdist eval bfcl --score-only`: merges the M bfcl-infer shard files again (failing the job, naming the
# cases, if any is missing or answered twice), scores them by BFCL's rules and writes
# runs/<name>/bfcl/report.json and report.md: per category the rates and the cases scored of those read.
# Submit from the repository root, in the environment that has fcdist.
# Log: runs/<name>/slurm/bfcl-score-<jobid>.out (see slurm/train.sh).
#SBATCH --job-name=fcdist-bfcl-score
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --open-mode=append
# --requeue: after a node failure or a preemption SLURM runs it again; the stage is safe to rerun.
set -euo pipefail

vars=$(python -m fcdist.submit job-env bfcl-score "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS NUM_SHARDS
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job $SLURM_JOB_ID: slurm/bfcl-score.sh $(printf '%q ' "$@")"

# `fcdist eval bfcl --score-only --num-shards NUM_SHARDS --out RUN/bfcl` (the chain: fcdist/stages.py)
python -m fcdist.stages run bfcl-score --num-shards "$NUM_SHARDS" "${CONFIG_ARGS[@]}"
