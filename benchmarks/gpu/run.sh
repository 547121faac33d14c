#!/usr/bin/env bash
# On the GPU machine, from the repository root, with the staged packages on PYTHONPATH
# (see benchmarks/README.md): tests, doctor, the TensorRT check and the GPU benchmark on a
# 1920x1080 30 fps H.264 version of the sample clip. Everything lands in ${OUT:-out/gpu}.
set -uo pipefail
final=${OUT:-out/gpu}
out=$final/r   # packed into results.tgz at the end: the device tool returns at most 8 files
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.txt" 2>&1
timeout 120 python3 -m streamtrt doctor > "$out/doctor.txt" 2>&1
timeout 420 python3 -m pytest -ra -p no:cacheprovider ${PYTEST_ARGS:-tests} > "$out/pytest.txt" 2>&1
echo "pytest exit $?" >> "$out/pytest.txt"
clip=/tmp/vtest-1080p.mp4
[ -f $clip ] || timeout 180 python3 benchmarks/make_clip.py samples/vtest.mp4 $clip --width 1920 --height 1080 --fps 30 > "$out/clip.txt" 2>&1
i=0
[ -n "${SKIP_BENCH:-}" ] && BENCH_MATRIX="|"
while IFS='|' read -r naive sets; do
  [ -z "$naive" ] && continue
  i=$((i+1))
  timeout 240 python3 -m streamtrt bench configs/sample.yaml --source $clip --frames 795 --naive-decoder $naive \
    $sets --json "$out/bench-$i.json" > "$out/bench-$i.md" 2>&1
done <<< "${BENCH_MATRIX:-opencv|
same|
opencv|--set runtime.cuda_graph=false
opencv|--set runtime.batch_size=8}"
if [ -z "${SKIP_TRT:-}" ]; then
  timeout 300 python3 benchmarks/gpu/tensorrt_check.py "$out" > "$out/tensorrt-check.md" 2>&1
fi
tail -n 3 "$out/pytest.txt"; cat "$out/doctor.txt"; cat "$out/tensorrt-check.md" 2>/dev/null; cat "$out"/bench-*.md
tar czf "$final/results.tgz" -C "$out" . && rm -rf "$out"
