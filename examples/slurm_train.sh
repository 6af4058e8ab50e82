#!/bin/bash
# Train CFLD on several nodes with Slurm: one task per node, each starting 8 GPU processes
# through accelerate (examples/accelerate_multinode.yaml; the command line overrides its
# node count, rank and address).  Submit with:  sbatch examples/slurm_train.sh
#
# The authors' total batch of 224 pairs is kept whatever the node count: --total-batch-size is
# split by processes x gradient-accumulation steps (14 pairs per GPU on 2 nodes).  The same seed
# gives the same per-sample draws on any split, so a run may be resumed (--resume latest) only
# with the process count it started with, but a new run on another count trains the same model
# up to float rounding.
#SBATCH --job-name=cfld-train
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64
#SBATCH --time=72:00:00
#SBATCH --output=cfld-train-%j.log
set -euo pipefail

GPUS_PER_NODE=8
MAIN_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
RUN=${RUN:-runs/cfld-fashion}          # on a shared file system
DATA=${DATA:-data/fashion}             # a prepared root (cfld data prepare)
SD=${SD:-pretrained/stable-diffusion-v1-5}
SWIN=${SWIN:-pretrained/swin_base_patch4_window12_384_22kto1k.pth}

srun --kill-on-bad-exit=1 bash -c "accelerate launch \
    --config_file examples/accelerate_multinode.yaml \
    --num_machines $SLURM_NNODES --machine_rank \$SLURM_NODEID \
    --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \
    --main_process_ip $MAIN_NODE --main_process_port 29500 \
    -m cfld.cli train --preset fashion_256 --data $DATA --out $RUN \
    --pretrained-sd $SD --pretrained-swin $SWIN \
    --total-batch-size 224 --mixed-precision fp16 --gradient-checkpointing \
    --resume latest"

# Then generation and evaluation on the same allocation (each pair's noise is seeded by its
# names, so the images do not depend on the process count):
#   srun ... accelerate launch ... -m cfld.cli generate --model $RUN/model --vae $SD \
#       --pairs $DATA/fasion-resize-pairs-test.csv --data $DATA --out $RUN/gen256 --size 256x176
#   srun ... accelerate launch ... -m cfld.cli evaluate --generated $RUN/gen256 --data $DATA \
#       --size 256x176 --device cuda
