#!/bin/bash
# Usage: sbatch slurm/gather.sh --config configs/jobs/X.yaml [key=value ...]
#
# `fcdist gather` on the run of the config: its latest checkpoint (DDP, or DeepSpeed ZeRO shards,
# consolidated) becomes the LoRA adapter in runs/<name>/gathered/. Memory, not GPUs: a ZeRO checkpoint
# is consolidated in fp32 in RAM (ask --mem for large models). Submit from the repository root, in the
# environment that has fcdist. Log: runs/<name>/slurm/gather-<jobid>.out (see slurm/train.sh).
#SBATCH --job-name=fcdist-gather
#SBATCH --ntasks=1
#SBATCH --requeue
#SBATCH --open-mode=append
# --requeue: after a node failure or a preemption SLURM runs it again; the stage is safe to rerun.
set -euo pipefail

vars=$(python -m fcdist.submit job-env gather "$@") || exit 1
eval "$vars"  # RUN LOG CONFIG_ARGS
[[ /dev/stdout -ef $LOG ]] || { echo "fcdist: log: $LOG"; exec >>"$LOG" 2>&1; }
echo "fcdist: job $SLURM_JOB_ID: slurm/gather.sh $(printf '%q ' "$@")"

# `fcdist gather --run RUN` (the chain: fcdist/stages.py)
python -m fcdist.stages run gather "${CONFIG_ARGS[@]}"
