#!/bin/bash
# Usage: slurm/pipeline.sh [--nodes=K] [--gpus-per-node=G] [--gpu=TYPE] [--time=T] [--infer-shards=M] --config configs/jobs/X.yaml [key=value ...]
#
# Submits the whole job, each stage waiting for the one before (--dependency=afterok), and prints the
# job ids, one "stage id" line each:
#   preprocess (array, data.num_shards tasks) -> train (K nodes, G GPUs each, time limit T)
#   -> gather -> infer (array, M tasks, default 2; one GPU each when G > 0) -> score
#   [-> bfcl-convert -> bfcl-infer (array, as infer) -> bfcl-score, when the config sets eval.bfcl_dir]
# The options before --config are this script's; the config and key=value overrides go to every stage.
# The chain (stages, arrays, arguments) is fcdist/stages.py's; `python -m fcdist.stages sbatch-lines` checks
# the config and the training request (sbatch --test-only: where the site does not enforce partition limits
# sbatch would accept an impossible one and leave it pending for ever), creates runs/<name>/slurm/ so that
# every job logs there from its first line, and prints one `submit STAGE AFTER sbatch-arguments` line per
# stage, every argument shell-quoted. A stage that fails cancels the ones after it
# (--kill-on-invalid-dep=yes) instead of leaving them pending for ever; a submission that fails cancels
# the jobs already submitted.
# Run it (not sbatch) from the repository root, in the environment that has fcdist. Partition, account,
# QOS for every job: export SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_QOS, which sbatch reads.
set -Eeuo pipefail  # -E: the ERR trap below also fires inside submit()

# First `fcdist plan --check`: a job that cannot start or cannot fit (with --gpu=TYPE: its memory too) is
# refused before anything is queued, one line per reason; `fcdist plan` with the same options shows the plan.
python -m fcdist.cli plan --check "$@" || exit
chain=$(python -m fcdist.stages sbatch-lines "$@") || exit
eval "${chain%%$'\n'*}"  # the first line: RUN=runs/<name>
echo "pipeline: $(printf '%q ' "$@")-> $RUN"

declare -A ids=()
submitted=()
trap '((${#submitted[@]} == 0)) || { scancel "${submitted[@]}"; echo "pipeline.sh: cancelled ${submitted[*]}" >&2; }' ERR
submit() {  # STAGE AFTER [sbatch options] TEMPLATE [template arguments]: sbatch it after AFTER's job, print "STAGE id"
    local stage=$1 after=$2 id
    shift 2
    [[ $after == - ]] || set -- --dependency=afterok:"${ids[$after]}" "$@"
    id=$(sbatch "$@")
    id=${id%%;*}  # "id;cluster" on a federation
    ids[$stage]=$id
    submitted+=("$id")
    echo "$stage $id"
}
eval "${chain#*$'\n'}"
echo "logs: $RUN/slurm"
