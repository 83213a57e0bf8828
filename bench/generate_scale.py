"""Generation speed (leads/s) and peak memory of `leadrank generate` at several sizes.

Each size runs in its own process so the peak RSS is that size's alone. Memory
should stay flat in N (chunked generation); speed should stay roughly constant.

    .venv/bin/python bench/generate_scale.py [--sizes 20000,100000] [--world benchmark]
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(world: str, n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([Path(sys.executable).parent / "leadrank", "generate", "--world", world, "--leads", str(n),
                        "--out", tmp], check=True, capture_output=True)
        dt = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # max over children so far
    return n / dt, peak_mb


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="20000,100000")
    p.add_argument("--world", default="benchmark")
    a = p.parse_args()
    print(f"{'leads':>10} {'leads/s':>10} {'peak RSS MB (running max)':>26}")
    for n in (int(s) for s in a.sizes.split(",")):
        speed, peak = measure(a.world, n)
        print(f"{n:>10,} {speed:>10,.0f} {peak:>26,.0f}")


if __name__ == "__main__":
    main()
