# Native kernels of the CPU backend (see native/README.md). Built at install by
# scripts/build-native.mjs; the WebAssembly kernels remain the portable path.
{
  "targets": [
    {
      "target_name": "tsdpo_native",
      "sources": [
        "src/addon.cc", "src/attention.cc", "src/gemm.cc", "src/pack.cc", "src/pool.cc", "src/stream.cc",
        "src/kernel_avx512.cc", "src/kernel_avx2.cc", "src/kernel_scalar.cc", "src/trim.cc"
      ],
      # Baseline ISA only: the SIMD micro-kernels carry function-level targets and are chosen at
      # run time, so the binary loads on any CPU of the architecture. No contraction of a * b + c
      # into FMA outside the explicit intrinsics: the summation order is part of the contract.
      # -Wno-psabi: attention_rows.inc's 16-float vectors only warn that they would be passed
      # differently without AVX-512 (they are always inlined).
      "cflags_cc": ["-O3", "-ffp-contract=off", "-fno-math-errno", "-Wno-psabi"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=off", "-fno-math-errno"]
      }
    }
  ]
}
