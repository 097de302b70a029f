#!/usr/bin/env bash
# Run ON THE GPU MACHINE (device tool), from the repository root, after prepare.sh filled
# scripts/gpu/.carry here and the call carried it:  bash scripts/gpu/run.sh
# Writes $OUT/gpu.json (results), $OUT/run.log and $OUT/nvidia-smi.txt; the next session copies
# gpu.json to bench/results/gpu.json and commits it. Budget: finishes inside 8 minutes.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
carry="$root/scripts/gpu/.carry"
out="${OUT:-$root/.scratch/gpu-out}"
mkdir -p "$out"
exec > >(tee "$out/run.log") 2>&1
t0=$(date +%s)
left() { echo $((460 - ($(date +%s) - t0))); }

nvidia-smi -q > "$out/nvidia-smi.txt" 2>&1 || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true

# 1. Node, from the carried xz (python's lzma when xz is missing).
nd=/tmp/moe-node
mkdir -p "$nd"
if command -v xz >/dev/null; then
  xz -dc "$carry/node.xz" > "$nd/node"
else
  python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$carry/node.xz" "$nd/node"
fi
chmod +x "$nd/node"
export PATH="$nd:$PATH"
node --version || { echo "run.sh: carried node does not run here" >&2; exit 10; }

# 2. Addons: the prebuilt ones, else rebuilt here with this machine's compilers.
export MOE_CUDA_PATH="$carry/moe_cuda.node" MOE_NATIVE_PATH="$carry/moe_native.node"
if ! node -e 'require(process.env.MOE_CUDA_PATH)'; then
  echo "run.sh: rebuilding the CUDA addon here"
  NODE_INCLUDE="$carry/include" NAPI_INCLUDE="$carry/include" MOE_CUDA_BUILD_DIR=/tmp/moe-cuda \
    bash gpu-backend/device/cuda/build.sh && export MOE_CUDA_PATH=/tmp/moe-cuda/moe_cuda.node
fi
if ! node -e 'require(process.env.MOE_NATIVE_PATH)'; then
  echo "run.sh: rebuilding the CPU addon here"
  mkdir -p /tmp/moe-cpu
  g++ -std=c++17 -O3 -fPIC -shared -fopenmp -fno-math-errno -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS \
    -I"$carry/include" gpu-backend/device/cpu/native/*.cc -o /tmp/moe-cpu/moe_native.node &&
    export MOE_NATIVE_PATH=/tmp/moe-cpu/moe_native.node
fi

# 3. cuBLAS for prefill GEMMs: the toolkit's, else the one PyTorch ships (own kernel if none).
if [ -z "${MOE_CUBLAS_PATH:-}" ]; then
  for c in /usr/local/cuda/lib64/libcublas.so.13 /usr/local/cuda/lib64/libcublas.so.12 \
    $(python3 -c 'import glob,os,nvidia.cublas as m; print(" ".join(sorted(glob.glob(os.path.join(list(m.__path__)[0],"lib","libcublas.so*")))))' 2>/dev/null); do
    if [ -f "$c" ]; then export MOE_CUBLAS_PATH="$c"; break; fi
  done
fi
echo "run.sh: cuBLAS candidate: ${MOE_CUBLAS_PATH:-<loader search path>}"

# 4. Parity, HF comparison, benchmark.
timeout --signal=TERM "$(left)" node "$carry/gpu-main.mjs" --out "$out" --deadline-s "$(($(left) - 10))" "$@"
rc=$?
echo "run.sh: gpu-main exited $rc after $(($(date +%s) - t0))s"
exit $rc
