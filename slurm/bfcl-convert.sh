#!/bin/bash
# Usage: sbatch slurm/bfcl-convert.sh --config configs/jobs/X.yaml [key=value ...]
#
# `fcdist eval bfcl --convert-only`: the BFCL files of the config's eval.bfcl_dir become gold rows in
# runs/<name>/bfcl/gold.jsonl, with the cases read, converted and skipped in conversion.json. CPU only,
# seconds. Submit from the repository root, in the environment that has fcdist.
# Log: runs/<name>/slurm/bfcl-convert-<jobid>.out (see slurm/train.sh).
#SBATCH --job-name=fcdist-bfcl-convert
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --open-mode=append
# --requeue: after a node failure or a preemption SLURM runs it again; the stage is safe to rerun.
set -euo pipefail

vars=$(python -m fcdist.submit job-env bfcl-convert "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job $SLURM_JOB_ID: slurm/bfcl-convert.sh $(printf '%q ' "$@")"

# `fcdist eval bfcl --convert-only --out RUN/bfcl` with the config (the chain: fcdist/stages.py)
python -m fcdist.stages run bfcl-convert "${CONFIG_ARGS[@]}"
