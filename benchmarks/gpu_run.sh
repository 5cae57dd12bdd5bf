#!/usr/bin/env bash
# The GPU session's one script: CUDA checks, then trainer and generation benchmarks on
# SmolLM2's architecture and a Qwen2-1.5B-like one (random weights). Results go to $R.
# Usage: gpu_run.sh DEVICE RESULTS_JSON [tiny]   (tiny: a CPU dry run of the same steps)
# PARTS (default "checks trainer generation") picks what runs; PROFILE_DIR, if set, gets a
# profile of one trainer and one bare step per model (prof_<model>.txt).
set -u
D=$1; R=$2; TINY=${3:-}; PARTS=${PARTS:-checks trainer generation}
B=$(dirname "$0"); TOK=$B/../tok
if [ -n "$TINY" ]; then
  M1=arch:tiny; M2=arch:tiny; T1="--samples 2 --length 64 --micro-batch-tokens 128 --repeats 1 --compile aot_eager"
  T2=$T1; G="--prompts 2 --prompt-len 16 --tokens 4 --repeats 1"; DT=float32
else
  M1=arch:smollm2; M2=arch:qwen2-1.5b
  T1="--samples 32 --length 1024 --micro-batch-tokens 8192 --repeats 10 --compile inductor"
  T2="--samples 16 --length 2048 --micro-batch-tokens 8192 --repeats 4 --compile inductor"
  G="--prompts 32 --prompt-len 512 --tokens 128 --repeats 3"; DT=bfloat16
fi
has() { [[ " $PARTS " == *" $1 "* ]]; }
prof() { [ -n "${PROFILE_DIR:-}" ] && echo "--profile $PROFILE_DIR/prof_${1#arch:}.txt"; }
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
[ "$D" = cpu ] || nvidia-smi -L
if has checks; then
  python3 $B/rl_cuda_checks.py --device $D --tokenizer $TOK --out $R || echo "checks FAILED"
fi
for M in $M1 $M2; do
  T=$T1; [ $M = $M2 ] && [ -z "$TINY" ] && T=$T2
  if has trainer; then
    python3 $B/rl_trainer_bench.py --device $D --dtype $DT --model $M $T --out $R $(prof $M) \
      || echo "trainer $M FAILED"
  fi
  if has generation; then
    python3 $B/agent_bench_generation.py --device $D --dtype $DT --model $M --tokenizer $TOK $G \
      --out $R || echo "generation $M FAILED"
  fi
done
echo DONE
