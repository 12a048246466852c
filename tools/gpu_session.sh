#!/usr/bin/env bash
# Everything the book records on one GPU, in one command that ends within MINUTES (+ about 1):
#
#   ALEXNET_DATA=<data root> bash tools/gpu_session.sh MINUTES [ARCHIVE]
#
# 1. the GPU benchmarks first, on an idle GPU (bench/bench_lrn.py, bench/bench_train.py in fp32
#    and in eager bf16 with channels_last at batch 128), printed into book/results/gpu/;
# 2. then, together: full-width Imagenette runs of tools/full_scale.py (six processes on the one
#    GPU, the two-tower comparison unless ONLY names others; each resumable: a second call on the
#    same machine continues them where the first stopped them),
#    and chapter 3 executed as a notebook in full mode (where nbclient and ipykernel are
#    installed), saved with its outputs;
# 3. everything written (logs, evaluations, conv1 kernels, benchmark printouts, the chapter)
#    packed into ARCHIVE (a .tar.gz) when given, for a machine that is not kept afterwards.
#    Unpack it in book/. Checkpoints stay in the runs root on that machine ($ALEXNET_RUNS, else
#    ~/.cache/alexnet_lib/runs).
#
# PARTS="bench runs chapter" (the default) chooses the parts.
# TINY=1 does all of it on a few hundred images for one epoch, on whatever device there is:
# the way to test this script on a CPU before spending a GPU's time. It writes into a temporary
# folder (printed), never into book/.
set -uo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:?usage: tools/gpu_session.sh MINUTES [ARCHIVE]}
ARCHIVE=${2:-}
PY=${PYTHON:-python3}
if [ -n "${TINY:-}" ]; then ROOT_OUT=$(mktemp -d); echo "TINY: everything goes to $ROOT_OUT"; else ROOT_OUT=book; fi
OUT=$ROOT_OUT/results/gpu
FULL=$ROOT_OUT/results/full_scale
CHAPTER=$ROOT_OUT/03_multiple_gpus.ipynb
mkdir -p "$OUT" "$FULL"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$(date +%s)
{ echo "started $(date -u '+%Y-%m-%d %H:%M') UTC"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null \
  || echo "no GPU"; "$PY" -c "import torch; print('torch', torch.__version__)"; } > "$OUT/session.txt"

if [ -n "${TINY:-}" ]; then
  BENCH=(--batch 8 --repeats 1); MODE=smoke
  RUNS=(--tiny --only alexnet_s0 one_tower_s0 --jobs 2 --results "$FULL" --runs "$ROOT_OUT/runs")
else
  # Six at once: one full-width 90-epoch run took about 2.5 min alone on an H100 (chapter 8's
  # recorded runs); how well six share a GPU is not measured yet. The two-tower comparison first
  # (ONLY= names others: tools/full_scale.py --list)
  ONLY=${ONLY:-alexnet_s0 one_tower_s0 alexnet_s1 one_tower_s1 alexnet_s2 one_tower_s2}
  BENCH=(--batch 128 --repeats 5); RUNS=(--device cuda --jobs 6 --only $ONLY); MODE=full
fi

PARTS=${PARTS:-bench runs chapter}
want() { [[ " $PARTS " == *" $1 "* ]]; }

# 1. benchmarks on an idle GPU
if want bench; then
  "$PY" bench/bench_lrn.py "${BENCH[@]}" --device "$( [ -n "${TINY:-}" ] && echo cpu || echo cuda )" \
    > "$OUT/bench_lrn.txt" 2>&1
  "$PY" bench/bench_train.py "${BENCH[@]}" > "$OUT/bench_train_fp32.txt" 2>&1
  "$PY" bench/bench_train.py "${BENCH[@]}" --bf16 --channels-last > "$OUT/bench_train_bf16.txt" 2>&1
fi

# 2. the runs and the chapter, side by side, within what is left of MINUTES
left=$(( MINUTES - ($(date +%s) - start) / 60 ))
[ "$left" -lt 1 ] && left=1
runs=
if want runs; then
  if [ -z "${TINY:-}" ]; then  # decode the images into the cache once, not in every run at the same time
    "$PY" -c "from alexnet_lib.data import load_dataset as l; l('imagenette', 'train', size=256); \
l('imagenette', 'val', size=256)" > /dev/null 2>&1
  fi
  "$PY" tools/full_scale.py --group imagenette --minutes "$left" "${RUNS[@]}" > "$OUT/full_scale.txt" 2>&1 &
  runs=$!
fi
if want chapter; then
  if "$PY" -c "import nbclient, ipykernel" 2> /dev/null; then
    ALEXNET_MODE=$MODE timeout $(( left * 60 + 60 )) "$PY" tools/execute_chapter.py book/03_multiple_gpus.ipynb \
      "$CHAPTER" > "$OUT/chapter.txt" 2>&1 < /dev/null
  else
    echo "chapter not executed: nbclient and ipykernel are not installed here" > "$OUT/chapter.txt"
  fi
fi
[ -n "$runs" ] && wait "$runs"
echo "wall time $(( $(date +%s) - start )) s" >> "$OUT/session.txt"

# 3. what a machine that is not kept must hand back
if [ -n "$ARCHIVE" ]; then
  tar -czf "$ARCHIVE" -C "$ROOT_OUT" results/full_scale results/gpu 03_multiple_gpus.ipynb 2> /dev/null
  echo "packed into $ARCHIVE"
fi
tail -n 3 "$OUT"/*.txt
