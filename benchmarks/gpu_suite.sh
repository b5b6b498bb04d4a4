#!/usr/bin/env bash
# The GPU suite (benchmarks/gpu_suite.py): train throughput against the reference loop (fp32, bf16,
# channels_last, torch.compile), achieved TFLOP/s, a 50,000-sample FID, the streamed data path.
# Runs from a copy of the repository on a machine with torch installed and no network:
#     bash benchmarks/gpu_suite.sh                 # all sections, JSON written to benchmarks/
#     bash benchmarks/gpu_suite.sh --tiny          # toy sizes, any device (the CPU smoke test)
# ganforge's other dependencies (numpy, pillow, pyyaml, safetensors, tqdm, matplotlib) must import; on a
# machine without them, install them beforehand where a registry is reachable, with the same Python:
#     pip install --target benchmarks/vendor numpy pillow pyyaml safetensors tqdm matplotlib
# and copy the folder along: it is put on the path when present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python="$(command -v python3)"; fi
fi
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
[[ -d "$root/benchmarks/vendor" ]] && export PYTHONPATH="$PYTHONPATH:$root/benchmarks/vendor"
if ! "$python" -c "import torch, numpy, PIL, yaml, safetensors, tqdm, matplotlib" 2>/dev/null; then
    echo "gpu_suite: $python cannot import ganforge's dependencies; see the top of benchmarks/gpu_suite.sh" >&2
    exit 2
fi
cd "$root"
exec "$python" benchmarks/gpu_suite.py "$@"
