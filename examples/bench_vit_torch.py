#!/usr/bin/python3
"""PyTorch 1.13 on the same ViT-B/16 as examples/bench_vit.c: CLIP's
VisionTransformer from test/nn/vit_ref.py, fp32, eval, no_grad, 2 threads
(or GTL_BENCH_TORCH_THREADS; bench_vit passes its own thread count).

Prints machine-readable lines that bench_vit.c parses:
    torch fp32 B=<b> ms_per_img <x>
    torch matmul 197x768x3072 gflops <x>
Run with Debian's /usr/bin/python3. BLAS: Debian's torch calls the system
libblas.so.3 (install libopenblas0-openmp, or it is the reference BLAS). On an
AVX2-only CPU do not set OPENBLAS_CORETYPE=SkylakeX.
"""
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test", "nn"))
import vit_ref  # noqa: E402


def timed(fn, reps):
    """Best of reps after a warm-up (the machine may be shared)."""
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    torch.set_num_threads(int(os.environ.get("GTL_BENCH_TORCH_THREADS", "2")))
    torch.manual_seed(0)
    a = torch.randn(197, 768)
    w = torch.randn(3072, 768)
    t = timed(lambda: torch.nn.functional.linear(a, w), 20)
    print("torch matmul 197x768x3072 gflops %.1f" % (2 * 197 * 768 * 3072 / t / 1e9), flush=True)

    model, _ = vit_ref.build("B16")
    with torch.no_grad():
        for b, reps in ((1, 5), (8, 3)):
            x = torch.randn(b, 3, 224, 224)
            t = timed(lambda: model.features(x), reps)
            print("torch fp32 B=%d ms_per_img %.2f" % (b, t * 1e3 / b), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
