#!/usr/bin/env bash
# How to run benchmarks/sentiment_quality.py on a GPU machine without network access (not run yet). For a machine
# that takes at most 64 MiB per transfer, the weights travel as fp16 pieces (upcast back to fp32 there,
# sha-checked after joining) over several calls:
#   gpu_quality.sh recv .gpu/pN        copy one transferred piece folder into /tmp/w (kept while the machine runs)
#   gpu_quality.sh run '<trials json>' '<student trials json>'   join, upcast, run the benchmark, results to $OUT
set -euo pipefail
stage=$1
mkdir -p /tmp/w
if [ "$stage" = recv ]; then
  cp -r "$2"/. /tmp/w/ && ls -la /tmp/w && exit 0
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, transformers, peft, sklearn; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'sklearn', sklearn.__version__)"
cat /tmp/w/mpnet_part_0{0,1,2,3} > /tmp/w/model.fp16.safetensors
(cd /tmp/w && sha256sum -c mpnet.sha)
python3 - <<'PY'
import os, shutil
from safetensors.torch import load_file, save_file
for name, src in (("mpnet", "/tmp/w"), ("minilm", ".gpu/minilm")):
    dst = f"/tmp/models/{name}"
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        if f.endswith((".json", ".txt")) and f != "mpnet.sha":
            shutil.copy(os.path.join(src, f), dst)
    state = load_file(os.path.join(src, "model.fp16.safetensors"))
    save_file({k: v.float().contiguous() for k, v in state.items()}, f"{dst}/model.safetensors")
    print(name, "upcast to fp32:", len(state), "tensors")
PY
python3 benchmarks/sentiment_quality.py --examples .gpu/data/examples.parquet --unlabelled .gpu/data/abp_pool.parquet \
  --teacher /tmp/models/mpnet --student /tmp/models/minilm --trials "$2" --student-trials "$3" \
  --budget-s "${4:-420}" --plain-student --out /tmp/quality 2>&1 | grep -v -i warn
cp /tmp/quality/results.json "$OUT/results.json"
