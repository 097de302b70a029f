#!/usr/bin/env bash
# Builds the CUDA device addon (build/cuda/moe_cuda.node) with nvcc + g++. Never part of
# `npm install`: run `npm run build:cuda`. Exits 2 (and builds nothing) when nvcc is missing.
#
# The addon links the CUDA runtime statically and loads cuBLAS with dlopen at run time, so the
# .node file runs on any machine with a CUDA 13 driver (and loads, reporting "no GPU", without one).
# Env: NVCC (compiler), NODE_INCLUDE / NAPI_INCLUDE (header dirs), CUDA_ARCHS (default "90": sm_90 SASS + compute_90 PTX), MOE_CUDA_BUILD_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
src="$here/native"
out="${MOE_CUDA_BUILD_DIR:-$root/build/cuda}"
nvcc="${NVCC:-nvcc}"
if ! command -v "$nvcc" >/dev/null 2>&1; then
  echo "build:cuda: nvcc not found (set NVCC or install the CUDA toolkit); nothing built" >&2
  exit 2
fi
cuda_home="${CUDA_HOME:-}"
if [ -z "$cuda_home" ]; then
  # nvcc may be a wrapper outside the toolkit (/usr/local/bin/nvcc): look beside it, then the usual place.
  cuda_home="$(dirname "$(dirname "$(readlink -f "$(command -v "$nvcc")")")")"
  [ -f "$cuda_home/include/cuda_runtime.h" ] || cuda_home=/usr/local/cuda
fi
node_inc="${NODE_INCLUDE:-$(node -p 'require("path").resolve(process.execPath, "../../include/node")')}"
napi_inc="${NAPI_INCLUDE:-$(cd "$root" && node -p 'require("path").resolve(require("node-addon-api").include_dir)')}"
if [ ! -f "$node_inc/node_api.h" ]; then
  echo "build:cuda: node_api.h not found under $node_inc (set NODE_INCLUDE)" >&2
  exit 1
fi
gencode=()
for a in ${CUDA_ARCHS:-90}; do
  gencode+=("-gencode=arch=compute_$a,code=sm_$a")
done
last="${CUDA_ARCHS:-90}"
last="${last##* }"
gencode+=("-gencode=arch=compute_$last,code=compute_$last")

mkdir -p "$out/obj"
cxxflags=(-std=c++17 -O3 -fPIC -I"$cuda_home/include" -I"$node_inc" -I"$napi_inc" -DNAPI_VERSION=8
  -DNAPI_CPP_EXCEPTIONS -fexceptions -Wall -Wno-unused-parameter)
"$nvcc" -std=c++17 -O3 -Xcompiler -fPIC "${gencode[@]}" -c "$src/kernels.cu" -o "$out/obj/kernels.o" &
pid=$!
g++ "${cxxflags[@]}" -c "$src/addon.cc" -o "$out/obj/addon.o"
g++ "${cxxflags[@]}" -c "$src/cublas_dyn.cc" -o "$out/obj/cublas_dyn.o"
wait "$pid"
# libstdc++/libgcc static so the file also runs where the system C++ runtime is older.
g++ -shared -o "$out/moe_cuda.node" "$out/obj/addon.o" "$out/obj/cublas_dyn.o" "$out/obj/kernels.o" \
  -L"$cuda_home/lib64" -L"$cuda_home/lib64/stubs" -lcudart_static -ldl -lrt -lpthread \
  -static-libstdc++ -static-libgcc
echo "build:cuda: wrote $out/moe_cuda.node"
