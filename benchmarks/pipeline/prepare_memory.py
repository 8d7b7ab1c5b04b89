"""Peak memory of the prepare stage against the number of images, and its decoding rate, on
generated image folders of JPEGs.

    python -m benchmarks.pipeline.prepare_memory [--sizes 5000 100000] \
        [--decode 32:12000 224:3000] [--folders /tmp/simclr-bench-jpegs] \
        [--ref HEAD] [--out benchmarks/results/prepare_memory.jsonl]

Folders of N generated JPEGs (quality 90, 10 class subfolders; each image 4x4 random colour
blocks upsampled, plus pixel noise, so no two are alike) are written once under `--folders`
and reused by later runs (another commit measures the same files). For each folder, a throwaway
clone of HEAD (`workspace.clone`) with `datasets = {jpegs: {source: imagefolder, root: FOLDER,
image_size: SIDE}}` runs `python -m flows.prepare jpegs` for real; its process's peak RSS
(VmHWM) and peak anonymous memory are sampled from /proc every 0.1 s, and the decoding rate is
the one the stage logs ("read N images from imagefolder in S s (R images/s)"). `--sizes` are
32 px folders for the memory comparison; `--decode SIDE:N` adds folders for the decoding rate.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import numpy as np

from benchmarks.common import results_file, save
from benchmarks.pipeline.workspace import clone, load_params, run

CLASSES = 10


def jpeg_folder(base: Path, n: int, side: int) -> Path:
    """`base`/<side>px-<n>/<class>/<i>.jpg, written unless already complete."""
    from PIL import Image

    root = base / f"{side}px-{n}"
    done = root / ".complete"
    if done.is_file():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(side * 1_000_003 + n)
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
    for start in range(0, n, 1000):
        m = min(1000, n - start)
        coarse = rng.integers(0, 256, (m, 4, 4, 3)).astype(np.int16)
        fine = np.repeat(np.repeat(coarse, side // 4, 1), side // 4, 2)
        fine += rng.integers(-12, 13, fine.shape, dtype=np.int16)
        for i, img in enumerate(fine.clip(0, 255).astype(np.uint8)):
            k = start + i
            Image.fromarray(img).save(root / f"class{k % CLASSES}" / f"{k:07d}.jpg", quality=90)
    done.write_text(str(n))
    return root


def measure(folder: Path, side: int, ref: str) -> dict:
    params = load_params()
    entry = {"source": "imagefolder", "root": str(folder), "image_size": side}
    params["datasets"] = {"jpegs": entry}
    params["pretrain"]["dataset"] = "jpegs"
    params["transfer"] = {"datasets": []}
    path = clone(params, ref)
    try:
        r = run(path, "python", "-m", "flows.prepare", "jpegs")
        data = path / "data/prepared/jpegs"
        size = sum(f.stat().st_size for f in data.rglob("*.npy")) / 2**20
    finally:
        shutil.rmtree(path, ignore_errors=True)
    decoded = re.search(
        r"read (\d+) images from imagefolder in ([\d.]+) s \((\d+) images/s\)", r["output"]
    )
    images, seconds, rate = int(decoded[1]), float(decoded[2]), int(decoded[3])
    return {
        "folder": str(folder),
        "side": side,
        "images": images,
        "prepared_npy_mib": round(size, 1),
        "read_seconds": seconds,
        "decode_images_per_s": rate,
        **{k: v for k, v in r.items() if k not in ("output", "command")},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[5_000, 100_000])
    ap.add_argument("--decode", nargs="*", default=["32:12000", "224:3000"], help="SIDE:N")
    ap.add_argument("--folders", type=Path, default=Path("/tmp/simclr-bench-jpegs"))
    ap.add_argument("--ref", default="HEAD", help="the commit whose prepare is measured")
    ap.add_argument("--out", type=Path, default=results_file("prepare_memory"))
    args = ap.parse_args()
    memory = [measure(jpeg_folder(args.folders, n, 32), 32, args.ref) for n in args.sizes]
    decode = []
    for spec in args.decode:
        side, n = (int(v) for v in spec.split(":"))
        decode.append(measure(jpeg_folder(args.folders, n, side), side, args.ref))
    print("| images | prepared .npy (MiB) | peak RSS (MiB) | peak anonymous (MiB) | s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    base = memory[0] if memory else None
    for r in memory:
        print(
            f"| {r['images']:,} | {r['prepared_npy_mib']} | {r['peak_rss_mib']} "
            f"({r['peak_rss_mib'] / base['peak_rss_mib']:.2f}x) | {r['peak_anon_mib']} "
            f"({r['peak_anon_mib'] / base['peak_anon_mib']:.2f}x) | {r['seconds']} |"
        )
    for r in decode:
        print(f"decode {r['side']} px: {r['images']} images, {r['decode_images_per_s']} images/s")
    record = {
        "ref": args.ref,
        "memory": memory,
        "peak_rss_ratio": memory[-1]["peak_rss_mib"] / base["peak_rss_mib"] if base else None,
        "decode": decode,
    }
    return save(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())
