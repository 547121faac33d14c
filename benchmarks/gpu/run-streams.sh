#!/usr/bin/env bash
# On the GPU machine (see benchmarks/README.md): the GPU tests of the multi-stream path, then the
# multi-stream benchmark on N copies of a 1920x1080 30 fps H.264 clip made from the sample.
# PART=tests, PART=bench or PART=live (live-source decode, NVDEC vs CPU) runs one part (each fits one 10-minute device call); results in ${OUT:-out/gpu}.
set -uo pipefail
final=${OUT:-out/gpu}
out=$final/r
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
clip=/tmp/vtest-1080p.mp4
if [ "${PART:-tests}" = tests ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/nvidia-smi.txt" 2>&1
  timeout 300 python3 -m pytest -ra -p no:cacheprovider ${PYTEST_ARGS:-tests/gpu tests/postprocess tests/runtime/test_multistream.py} \
    > "$out/pytest.txt" 2>&1
  echo "pytest exit $?" >> "$out/pytest.txt"
  [ -f $clip ] || timeout 200 python3 benchmarks/make_clip.py samples/vtest.mp4 $clip --width 1920 --height 1080 --fps 30 > "$out/clip.txt" 2>&1
  tail -n 15 "$out/pytest.txt"
elif [ "${PART}" = live ]; then
  [ -f $clip ] || timeout 200 python3 benchmarks/make_clip.py samples/vtest.mp4 $clip --width 1920 --height 1080 --fps 30 > "$out/clip.txt" 2>&1
  [ -f /tmp/vtest-1080p.ts ] || python3 -c "import av,sys; i=av.open('$clip'); o=av.open('/tmp/vtest-1080p.ts','w'); s=i.streams.video[0]; t=o.add_stream_from_template(s)
for p in i.demux(s):
    if p.dts is None: continue
    p.stream=t; o.mux(p)
o.close()"
  timeout ${BENCH_TIMEOUT:-300} python3 benchmarks/gpu/live_decode.py /tmp/vtest-1080p.ts ${STREAMS:-1 8 16} > "$out/live.md" 2>&1
  cat "$out/live.md"
else
  [ -f $clip ] || timeout 200 python3 benchmarks/make_clip.py samples/vtest.mp4 $clip --width 1920 --height 1080 --fps 30 > "$out/clip.txt" 2>&1
  timeout ${BENCH_TIMEOUT:-500} python3 -m streamtrt bench configs/multi-stream.yaml --source $clip \
    --streams ${STREAMS:-16,32,64,96} --duration ${DURATION:-10} --set runtime.batch_size=${BATCH:-32} ${BENCH_SETS:-} \
    --json "$out/streams.json" > "$out/streams.md" 2>&1
  cat "$out/streams.md"
fi
tar czf "$final/results-${PART:-tests}.tgz" -C "$out" . && rm -rf "$out"
