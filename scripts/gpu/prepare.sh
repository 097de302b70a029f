#!/usr/bin/env bash
# Run HERE (the machine with Node, npm deps and nvcc) before a GPU session. Fills
# scripts/gpu/.carry/ (git-ignored; the device tool's `carry` brings it along, 64 MiB limit):
#   node.xz          this machine's Node binary, xz-compressed (the GPU machine has no Node)
#   gpu-main.mjs     scripts/gpu/main.ts bundled with its dependencies (no node_modules there)
#   moe_cuda.node    the CUDA addon (static CUDA runtime, cuBLAS via dlopen)
#   moe_native.node  the CPU addon (parity reference)
#   include/         Node-API + node-addon-api headers, so run.sh can rebuild the addons there
#                    with the machine's own nvcc/g++ if the prebuilt ones do not load
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
carry="$root/scripts/gpu/.carry"
cd "$root"
mkdir -p "$carry/include"

[ -f build/Release/moe_native.node ] || npm run build:native
cp build/Release/moe_native.node "$carry/moe_native.node"
bash gpu-backend/device/cuda/build.sh
cp build/cuda/moe_cuda.node "$carry/moe_cuda.node"

node_modules/.bin/esbuild scripts/gpu/main.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$carry/gpu-main.mjs" --log-level=warning \
  --banner:js="import { createRequire as __moeRequire } from 'node:module'; const require = __moeRequire(import.meta.url);"

node_inc="$(node -p 'require("path").resolve(process.execPath, "../../include/node")')"
cp "$node_inc"/{node_api.h,node_api_types.h,js_native_api.h,js_native_api_types.h} "$carry/include/"
napi_inc="$(node -p 'require("path").resolve(require("node-addon-api").include_dir)')"
cp "$napi_inc"/napi.h "$napi_inc"/napi-inl.h "$napi_inc"/napi-inl.deprecated.h "$carry/include/"

node_bin="$(node -p process.execPath)"
version="$(node --version)"
if [ ! -f "$carry/node.xz" ] || [ "$(cat "$carry/node.version" 2>/dev/null)" != "$version" ]; then
  echo "prepare: compressing $node_bin ($version), takes a few minutes"
  xz -T0 -6 -c "$node_bin" > "$carry/node.xz.tmp"
  mv "$carry/node.xz.tmp" "$carry/node.xz"
  echo "$version" > "$carry/node.version"
fi

bytes="$(du -sb "$carry" | cut -f1)"
echo "prepare: $carry holds $((bytes / 1048576)) MiB"
if [ "$bytes" -gt $((64 * 1048576)) ]; then
  echo "prepare: over the 64 MiB carry limit" >&2
  exit 1
fi
