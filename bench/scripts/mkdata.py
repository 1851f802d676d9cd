#!/usr/bin/env python3
"""Writes the 1 GiB mixed data set of docs/BENCHMARKS.md (deterministic).

By bytes: ~20 % incompressible files of 4-24 MiB, ~50 % log-like text of 0.25-8 MiB, the rest
small files (1-64 KiB) of mixed kinds.  Usage: mkdata.py DIR [TOTAL_MIB]
"""
import os
import random
import sys

def main():
    if len(sys.argv) < 2:
        sys.exit("usage: mkdata.py DIR [TOTAL_MIB]")
    root = sys.argv[1]
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    total <<= 20
    rng = random.Random(20261124)
    os.makedirs(root, exist_ok=True)
    words = [f"{w}" for w in "GET POST PUT /api/v1/items /health user= id= status=200 status=500 latency_ms= " \
             "INFO WARN ERROR DEBUG cache miss hit sync upload retry backoff conn= plant-7 line-3".split()]
    written = 0
    n = 0

    def put(name, data):
        nonlocal written, n
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        written += len(data)
        n += 1

    budget = {"random": total * 20 // 100, "logs": total * 50 // 100}
    done = {"random": 0, "logs": 0}
    while done["random"] < budget["random"]:
        size = rng.randint(4 << 20, 24 << 20)
        put(f"blob-{n:04}.bin", rng.randbytes(size))
        done["random"] += size
    while done["logs"] < budget["logs"]:
        size = rng.randint(256 << 10, 8 << 20)
        lines = []
        length = 0
        t = 1_700_000_000
        while length < size:
            t += rng.randint(0, 3)
            line = f"{t} " + " ".join(rng.choice(words) + str(rng.randint(0, 999)) for _ in range(8)) + "\n"
            lines.append(line)
            length += len(line)
        data = "".join(lines).encode()
        put(f"app-{n:04}.log", data)
        done["logs"] += len(data)
    os.makedirs(os.path.join(root, "small"), exist_ok=True)
    while written < total:
        size = rng.randint(1 << 10, 64 << 10)
        data = rng.randbytes(size) if rng.random() < 0.3 else (f"key{n}=value{rng.random()}\n" * (size // 24)).encode()
        put(os.path.join("small", f"s-{n:05}.dat"), data)
    print(f"{n} files, {written >> 20} MiB in {root}")

if __name__ == "__main__":
    main()
