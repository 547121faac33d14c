#!/usr/bin/env bash
# On the GPU machine, from the repository root, with the staged packages on PYTHONPATH
# (see benchmarks/README.md): GPU tests, doctor, and the GPU benchmark on a 1080p H.264 clip.
# Everything lands in ${OUT:-out/gpu}.
set -uo pipefail
out=${OUT:-out/gpu}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
python3 -c "import torch" 2>/dev/null  # loads cuDNN/cuBLAS from the image for the CUDA EP
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.txt" 2>&1
timeout 120 python3 -m streamtrt doctor > "$out/doctor.txt" 2>&1
timeout 300 python3 -m pytest -ra -p no:cacheprovider ${PYTEST_ARGS:-tests} > "$out/pytest.txt" 2>&1
echo "pytest exit $?" >> "$out/pytest.txt"
clip=/tmp/vtest-1080p.mp4
[ -f $clip ] || timeout 180 python3 benchmarks/make_clip.py samples/vtest.mp4 $clip --width 1920 --height 1080 --fps 30 > "$out/clip.txt" 2>&1
for naive in opencv same; do
  timeout 240 python3 -m streamtrt bench configs/sample.yaml --source $clip --frames 795 \
    --naive-decoder $naive ${BENCH_ARGS:-} --json "$out/bench-gpu-$naive.json" > "$out/bench-gpu-$naive.md" 2>&1
done
tail -n 3 "$out/pytest.txt"; cat "$out/doctor.txt"; cat "$out"/bench-gpu-*.md
