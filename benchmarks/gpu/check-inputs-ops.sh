#!/usr/bin/env bash
# On the GPU machine, from the repository root, with the staged packages on PYTHONPATH (see
# benchmarks/README.md): the GPU checks of the inputs, operations, tracking and model work.
#   PART=tests  GPU tests: orientation and VFR on NVDEC/DALI and live NVDEC, GPU timestamps, the
#               GPU bench's postprocess stage, tracking on the GPU path, model-derived settings
#   PART=bench  `streamtrt bench` single stream (default postprocessor: CuPy on the GPU) on a
#               1920x1080 30 fps clip, same settings as the README's GPU table
#   PART=soak   `streamtrt bench --soak MINUTES` on the GPU path (SOAK_MIN, default 6)
# Results land in $OUT (or out/gpu).
set -uo pipefail
out=${OUT:-out/gpu}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
clip=/tmp/vtest-1080p.mp4
python3 -c "import torch" 2>/dev/null  # cuDNN/cuBLAS from the image before ONNX Runtime's CUDA EP
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.txt" 2>&1
python3 - > "$out/versions.txt" 2>&1 <<'EOF'
import importlib
for m in ("nvidia.dali", "onnxruntime", "cupy", "av", "cv2", "numpy"):
    try:
        print(m, importlib.import_module(m).__version__)
    except Exception as exc:  # noqa: BLE001
        print(m, "missing:", exc)
EOF
part=${PART:-tests}
if [ "$part" = tests ]; then
  timeout ${TEST_TIMEOUT:-480} python3 -m pytest -ra -p no:cacheprovider -m "slow or not slow" ${PYTEST_ARGS:-\
    tests/gpu tests/preprocess/test_orientation.py tests/sources/test_frametimes.py tests/test_bench_postprocess.py} \
    > "$out/pytest.txt" 2>&1
  echo "pytest exit $?" >> "$out/pytest.txt"
  tail -n 40 "$out/pytest.txt"
elif [ "$part" = bench ]; then
  [ -f $clip ] || timeout 200 python3 benchmarks/make_clip.py samples/vtest.mp4 $clip --width 1920 --height 1080 --fps 30 \
    > "$out/clip.txt" 2>&1
  timeout ${BENCH_TIMEOUT:-400} python3 -m streamtrt bench configs/sample.yaml --source $clip --frames 795 \
    --naive-decoder opencv ${BENCH_SETS:-} --json "$out/bench.json" > "$out/bench.md" 2>&1
  echo "bench exit $?" >> "$out/bench.md"
  cat "$out/bench.md"
elif [ "$part" = soak ]; then
  timeout $(( ${SOAK_MIN:-6} * 60 + 180 )) python3 -m streamtrt bench configs/sample-tracking.yaml \
    --soak ${SOAK_MIN:-6} --json "$out/soak-gpu.json" > "$out/soak.md" 2>&1
  echo "soak exit $?" >> "$out/soak.md"
  cat "$out/soak.md"
fi
