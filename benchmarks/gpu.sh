#!/usr/bin/env bash
# The default NTU-60 pre-training recipe on one GPU, in one command (meant for under 5 minutes): sequences/s, MFU,
# peak memory and the projected 400-epoch time in fp32 / bf16 / bf16+compile, the loader's rate, and the GPU forward
# against the CPU one. Options: benchmarks/gpu.sh --help; a CPU check in seconds: benchmarks/gpu.sh --device cpu --smoke
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" benchmarks/bench_gpu.py "$@"
