#!/bin/bash
# Usage: slurm/pipeline.sh [--nodes=K] [--gpus-per-node=G] [--time=T] [--infer-shards=M] --config configs/jobs/X.yaml [key=value ...]
#
# Submits the whole job, each stage waiting for the one before (--dependency=afterok), and prints the
# job ids, one "stage id" line each:
#   preprocess (array, data.num_shards tasks) -> train (K nodes, G GPUs each, time limit T)
#   -> gather -> infer (array, M tasks, default 2; one GPU each when G > 0) -> score
# The options before --config are this script's; the config and key=value overrides go to every stage.
# It checks the config first, and creates runs/<name>/slurm/ so that every job logs there from its first
# line. A stage that fails cancels the ones after it (--kill-on-invalid-dep=yes) instead of leaving them
# pending for ever; a submission that fails cancels the jobs already submitted.
# Run it (not sbatch) from the repository root, in the environment that has fcdist. Partition, account,
# QOS for every job: export SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_QOS, which sbatch reads.
set -Eeuo pipefail  # -E: the ERR trap below also fires inside submit()

nodes=1 train_opts=() infer_opts=() infer_shards=2
while (($#)) && [[ $1 != --config ]]; do
    case $1 in
        --nodes=*) nodes=${1#*=} train_opts+=("$1") ;;
        --time=*) train_opts+=("$1") ;;
        --gpus-per-node=*) train_opts+=("$1"); ((${1#*=} == 0)) || infer_opts+=(--gpus-per-node=1) ;;
        --infer-shards=*) infer_shards=${1#*=} ;;
        *) echo "pipeline.sh: unknown option '$1' (see the usage at the top of slurm/pipeline.sh)" >&2; exit 2 ;;
    esac
    shift
done

# A missing config, an unknown key or a one-machine Accelerate config for K > 1 nodes stops here, before any job.
vars=$(python -m fcdist.submit job-env pipeline --nodes "$nodes" "$@") || exit 1
eval "$vars"  # RUN NUM_SHARDS (data.num_shards) ...
logs=$RUN/slurm
# An impossible training request (more nodes or GPUs than a node or partition has) stops here too: where
# the site does not enforce partition limits (EnforcePartLimits=NO, SLURM's default) sbatch would accept
# it and leave it pending for ever, with everything after it.
if ! refused=$(sbatch --test-only "${train_opts[@]}" slurm/train.sh "$@" 2>&1); then
    echo "pipeline.sh: SLURM cannot run the training job as asked (${train_opts[*]}): $refused" >&2
    exit 1
fi
echo "pipeline: $(printf '%q ' "$@")-> $RUN"

submitted=()
trap '((${#submitted[@]} == 0)) || { scancel "${submitted[@]}"; echo "pipeline.sh: cancelled ${submitted[*]}" >&2; }' ERR
submit() {  # STAGE [sbatch options] TEMPLATE [template arguments]: sbatch it, print "STAGE id", keep the id in $id
    local stage=$1
    shift
    id=$(sbatch --parsable --kill-on-invalid-dep=yes "$@")
    id=${id%%;*}  # "id;cluster" on a federation
    submitted+=("$id")
    echo "$stage $id"
}
# --output names are those each job would pick itself (job-env's LOG), so one file per job holds everything.
submit preprocess --array=0-$((NUM_SHARDS - 1)) --output="$logs/preprocess-%A_%a.out" \
    slurm/preprocess.sh --num-shards "$NUM_SHARDS" "$@"
submit train --dependency=afterok:"$id" "${train_opts[@]}" --output="$logs/train-%j.out" slurm/train.sh "$@"
submit gather --dependency=afterok:"$id" --output="$logs/gather-%j.out" slurm/gather.sh "$@"
submit infer --dependency=afterok:"$id" --array=0-$((infer_shards - 1)) "${infer_opts[@]}" \
    --output="$logs/infer-%A_%a.out" slurm/infer.sh --num-shards "$infer_shards" "$@"
submit score --dependency=afterok:"$id" --output="$logs/score-%j.out" slurm/score.sh --num-shards "$infer_shards" "$@"
echo "logs: $logs"
