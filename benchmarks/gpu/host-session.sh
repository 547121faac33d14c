#!/usr/bin/env bash
# On the GPU machine (issue 17 items 5 and 7; issue 15's GPU soak). Results in $OUT.
# STEPS (in order, default "profile cluster"):
#   soak      start `streamtrt bench --soak $SOAK_MIN` in the background on GPU $SOAK_GPU, in its own process
#             session (setsid): it outlives this call and runs on while the machine stays warm (30 s idle),
#             so later calls can do other work; collect it with soakwait (in this call or a later one)
#   profile   host CPU per stream, one process, $PROFILE_STREAMS paced streams; also the tree in $OLD (before/after)
#   cluster   the cluster bench, $WORKERS workers, $STREAMS streams, on GPUs $GPUS (CUDA MPS on unless MPS=0)
#   soakwait  wait for the background soak and keep its results
#   gputests  pytest tests/gpu (the GPU-only tests; they skip on the CPU machine)
set -uo pipefail
GPUS=${GPUS:-0}
o=${OUT:-out/gpu}; mkdir -p "$o"
export PYTHONPATH=${PYTHONPATH:-}:$PWD PYTHONUNBUFFERED=1
S="--set runtime.batch_size=64 --set runtime.stream_batch=4 --set runtime.batch_timeout_ms=40"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; python3 -V
  command -v nvidia-cuda-mps-control || echo "no nvidia-cuda-mps-control"; } > "$o/machine.txt" 2>&1
clip=/tmp/vtest-1080p.mp4
[ -f $clip ] || timeout 200 python3 benchmarks/make_clip.py samples/vtest.mp4 $clip --width 1920 --height 1080 --fps 30 > "$o/clip.txt" 2>&1
for step in ${STEPS:-profile cluster}; do
  case $step in
    soak)
      CUDA_VISIBLE_DEVICES=${SOAK_GPU:-0} setsid nohup timeout $(( ${SOAK_MIN:-10} * 60 + 240 )) python3 -m streamtrt bench \
        configs/sample-tracking.yaml --soak ${SOAK_MIN:-10} --json /tmp/soak-gpu.json > /tmp/soak-gpu.log 2>&1 &
      echo $! > /tmp/soak.pid; cp /tmp/soak.pid "$o/" ;;
    profile)
      for n in ${PROFILE_STREAMS:-64}; do
        for tree in ${OLD:-} new; do
          tag=$([ "$tree" = new ] && echo new || echo old)
          root=$([ "$tree" = new ] && echo "$PWD" || echo "$PWD/$tree")
          CUDA_VISIBLE_DEVICES=${PROFILE_GPU:-0} HOST_PROFILE_STREAMTRT=$root timeout 150 python3 benchmarks/host_profile.py \
            configs/multi-stream.yaml $clip --streams $n --duration 15 --settle 20 $S --json "$o/profile-$tag-$n.json" \
            > "$o/profile-$tag-$n.txt" 2>&1
          echo "profile $tag $n exit $?" >> "$o/profile-$tag-$n.txt"
        done
      done ;;
    gputests)
      timeout ${TESTS_TIMEOUT:-240} python3 -m pytest -ra -q -p no:cacheprovider tests/gpu > "$o/gputests.txt" 2>&1
      echo "gputests exit $?" >> "$o/gputests.txt" ;;
    cluster)
      if [ "${MPS:-1}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null && [ ! -e /tmp/nvidia-mps/control ]; then
        nvidia-cuda-mps-control -d && echo "MPS daemon started" >> "$o/machine.txt"
      fi
      for w in ${WORKERS:-3}; do
        CUDA_VISIBLE_DEVICES=${GPUS:-0} timeout ${CLUSTER_TIMEOUT:-240} python3 benchmarks/gpu/cluster_streams.py \
          configs/multi-stream.yaml $clip --workers $w --streams ${STREAMS:-128} --duration 15 $S \
          --json "$o/cluster-g${GPUS//,/}-w$w.json" > "$o/cluster-g${GPUS//,/}-w$w.txt" 2>&1
        echo "cluster w$w exit $?" >> "$o/cluster-g${GPUS//,/}-w$w.txt"
      done ;;
    soakwait)
      while kill -0 "$(cat /tmp/soak.pid)" 2>/dev/null; do sleep 2; done
      tail -n 3 /tmp/soak-gpu.log
      cp /tmp/soak-gpu.json /tmp/soak-gpu.log "$o/" 2>/dev/null ;;
  esac
done
cp /tmp/soak-gpu.log "$o/" 2>/dev/null
tail -n 8 "$o"/*.txt "$o"/*.log 2>/dev/null | cut -c1-400
