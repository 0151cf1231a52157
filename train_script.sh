#!/usr/bin/env bash
# SynergyNet's training recipe (the original's train_script.sh): MobileNetV2, batch 1024,
# lr 0.08, 80 epochs, milestones 48,64, 5 warm-up epochs, validation every 5 epochs.
#
#   bash train_script.sh                      # every GPU of this machine (torchrun), else the CPU
#   NPROC=8 bash train_script.sh              # 8 GPU processes
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 NPROC=8 bash train_script.sh   # on host0, and
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=host0 NPROC=8 bash train_script.sh   # on host1
#
# The batch (BATCH, default 1024) is the global one: each process takes BATCH / (NNODES * NPROC).
# Data paths are the original's, relative to where it runs (TRAIN_ROOT, TRAIN_LIST,
# TRAIN_PARAMS change them); TRAIN_ARGS adds or overrides main_train.py flags.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "${HERE}/.venv/bin/python" ]]; then PYTHON="${HERE}/.venv/bin/python"; else PYTHON=python3; fi
fi

LOG_DIR="ckpts/logs"
mkdir -p "${LOG_DIR}"
LOG_FILE="${LOG_DIR}/$(date +'%Y-%m-%d_%H:%M.%S').log"

GPUS="$("${PYTHON}" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null || echo 0)"
NNODES="${NNODES:-1}"
NPROC="${NPROC:-${GPUS}}"
BATCH="${BATCH:-1024}"

ARGS=(--arch="mobilenet_v2"
      --start-epoch=1
      --snapshot="ckpts/SynergyNet"
      --param-fp-train="${TRAIN_PARAMS:-./3dmm_data/param_all_norm_v201.pkl}"
      --warmup=5
      --base-lr=0.08
      --epochs=80
      --milestones=48,64
      --print-freq=50
      --devices-id=0
      --workers=8
      --filelists-train="${TRAIN_LIST:-./3dmm_data/train_aug_120x120.list.train}"
      --root="${TRAIN_ROOT:-./train_aug_120x120}"
      --log-file="${LOG_FILE}"
      --test_initial=True
      --save_val_freq=5
      --resume="")

if [[ "${GPUS}" -eq 0 || "${NPROC}" -eq 0 ]]; then
    echo "train_script.sh: no GPU found: training on the CPU in one process (very slow at this scale;" \
         "the README shows a small CPU demo)" >&2
    # shellcheck disable=SC2086
    exec "${PYTHON}" "${HERE}/main_train.py" "${ARGS[@]}" --batch-size="${BATCH}" --device=cpu ${TRAIN_ARGS:-}
fi

PER_PROCESS=$(( BATCH / (NNODES * NPROC) ))
if (( PER_PROCESS < 2 )); then
    echo "train_script.sh: a batch of ${BATCH} over $(( NNODES * NPROC )) processes is fewer than 2 a process" >&2
    exit 1
fi
if [[ "${NNODES}" -eq 1 ]]; then
    RDZV=(--standalone)
else
    RDZV=(--nnodes="${NNODES}" --node-rank="${NODE_RANK:?set NODE_RANK on each node}"
          --master-addr="${MASTER_ADDR:?set MASTER_ADDR to the first node}" --master-port="${MASTER_PORT:-29500}")
fi
echo "train_script.sh: ${NNODES} node(s) x ${NPROC} GPU process(es), ${PER_PROCESS} images a process a step" >&2
# shellcheck disable=SC2086
exec "${PYTHON}" -m torch.distributed.run "${RDZV[@]}" --nproc-per-node="${NPROC}" \
    "${HERE}/main_train.py" "${ARGS[@]}" --batch-size="${PER_PROCESS}" ${TRAIN_ARGS:-}
