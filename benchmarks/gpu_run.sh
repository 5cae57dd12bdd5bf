#!/usr/bin/env bash
# The GPU session's one script: CUDA checks, then trainer and generation benchmarks on
# SmolLM2's architecture and a Qwen2-1.5B-like one (random weights). Results go to $R.
# Usage: gpu_run.sh DEVICE RESULTS_JSON [tiny]   (tiny: a CPU dry run of the same steps)
set -u
D=$1; R=$2; TINY=${3:-}
B=$(dirname "$0"); TOK=$B/../tok
if [ -n "$TINY" ]; then
  M1=arch:tiny; M2=arch:tiny; T1="--samples 2 --length 64 --micro-batch-tokens 128 --repeats 1"
  T2=$T1; G="--prompts 2 --prompt-len 16 --tokens 4 --repeats 1"; DT=float32
else
  M1=arch:smollm2; M2=arch:qwen2-1.5b
  T1="--samples 32 --length 1024 --micro-batch-tokens 8192 --repeats 5"
  T2="--samples 16 --length 2048 --micro-batch-tokens 8192 --repeats 4"
  G="--prompts 32 --prompt-len 512 --tokens 128 --repeats 3"; DT=bfloat16
fi
python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
[ "$D" = cpu ] || nvidia-smi -L
python3 $B/rl_cuda_checks.py --device $D --tokenizer $TOK --out $R || echo "checks FAILED"
python3 $B/rl_trainer_bench.py --device $D --dtype $DT --model $M1 $T1 --out $R || echo "trainer $M1 FAILED"
python3 $B/agent_bench_generation.py --device $D --dtype $DT --model $M1 --tokenizer $TOK $G --out $R || echo "generation $M1 FAILED"
python3 $B/rl_trainer_bench.py --device $D --dtype $DT --model $M2 $T2 --out $R || echo "trainer $M2 FAILED"
python3 $B/agent_bench_generation.py --device $D --dtype $DT --model $M2 --tokenizer $TOK $G --out $R || echo "generation $M2 FAILED"
echo DONE
