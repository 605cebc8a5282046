#!/usr/bin/env bash
# The GPU bench of issue 17, as one prepared command for a machine with a CUDA GPU (run from the checkout root):
#   bash scripts/gpu_bench.sh            # ~6-8 min on an H100-class GPU; JSONs land in results/bench/
# Full-size random-init MERT-v1-95M and MERT-v1-330M (no download), fp32 and bf16 (stage 1b measures both; the
# pipeline stages run in the dtype given), window batch sizes 8, 32 and 64. 64 clips of 10 s give the GPU enough
# windows per repeat to time. Each bench is capped at 150 s so a stuck one cannot take the whole device budget.
set -u
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || exit 1
status=0
for model in mert-v1-95m-random mert-v1-330m-random; do
  for batch in 8 32 64; do
    timeout 150 python -m benchmark.bench model="$model" device=cuda model.dtype=bf16 batch_size="$batch" \
      clips=64 num_workers=8 memory_clips=4 || status=1
  done
done
exit $status
