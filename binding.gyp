{
  "targets": [
    {
      "target_name": "moe_native",
      "sources": [
        "gpu-backend/device/cpu/native/addon.cc",
        "gpu-backend/device/cpu/native/ops.cc",
        "gpu-backend/device/cpu/native/pool.cc",
        "gpu-backend/device/cpu/native/memory.cc",
        "gpu-backend/device/cpu/native/read_direct.cc",
        "gpu-backend/device/cpu/native/aio_read.cc",
        "gpu-backend/device/cpu/native/isa_scalar.cc",
        "gpu-backend/device/cpu/native/isa_avx2.cc",
        "gpu-backend/device/cpu/native/isa_avx512.cc",
        "gpu-backend/device/cpu/native/isa_avx512vnni.cc"
      ],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "cflags!": ["-O2", "-O0"],
      "cflags_cc!": ["-std=gnu++17", "-std=c++20", "-O2"],
      "cflags": ["-O3", "-pthread", "-fno-math-errno", "-Wno-maybe-uninitialized", "-Wno-uninitialized"],
      "cflags_cc": ["-std=c++17", "-O3", "-pthread", "-fno-math-errno"],
      "ldflags": ["-pthread"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
