"""The CIFAR-10 dev images made ready to travel to the GPU machine (tools/gpu/prepare.sh).

    python -m tools.gpu.data arrays DIR --data CIFAR10_DEV     # the prepared format
    python -m tools.gpu.data jpegs DIR --data CIFAR10_DEV [--train 500] [--val 100]

`arrays` runs the prepare stage's own code (load_dataset, split_source, save_prepared) on the
dev folder as an image-folder dataset at 32 px, train/ as the training split and val/ as the
test split: DIR/{train,test}/{images,labels}.npy (10,000 and 2,000 images), classes.json and
manifest.parquet, 37 MB. `jpegs` copies the first `--train` and `--val` files of each class
(sorted by name) into DIR/{train,val}/<class>/: the pipeline check prepares them on the device
with the real prepare stage, and JPEGs are a third of the arrays' size, which is what lets the
stage check's 50 MB of wheels travel with them.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

SEED = 0  # params.yaml's seed; the split is given by the folders, so it only seeds ties


def prepare_arrays(src: Path, out: Path) -> None:
    from simclr.config import DataConfig, DatasetConfig
    from simclr.data.prepared import save_prepared, split_source
    from tasks.sources import load_dataset

    cfg = DatasetConfig(
        source="imagefolder", root=str(src / "train"), test_root=str(src / "val"), image_size=32
    )
    opts = cfg.options(DataConfig())
    source = load_dataset(cfg, opts, SEED)
    prepared = split_source(source, opts.test_fraction, SEED, opts.fraction, opts.max_per_class)
    if prepared.rejected:
        raise SystemExit(f"{src}: {len(prepared.rejected)} files do not decode")
    save_prepared(prepared, out)
    print(f"{out}: {len(prepared.train.labels)} train, {len(prepared.test.labels)} test images")


def copy_jpegs(src: Path, out: Path, per_split: dict[str, int]) -> None:
    if out.exists():
        shutil.rmtree(out)
    for split, n in per_split.items():
        for folder in sorted((src / split).iterdir()):
            files = sorted(folder.glob("*.jpg"))[:n]
            (out / split / folder.name).mkdir(parents=True)
            for f in files:
                shutil.copyfile(f, out / split / folder.name / f.name)
    print(f"{out}: {', '.join(f'{n} {s}' for s, n in per_split.items())} images per class")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["arrays", "jpegs"])
    p.add_argument("dir", type=Path)
    p.add_argument("--data", type=Path, required=True, help="the CIFAR-10 dev folder")
    p.add_argument("--train", type=int, default=500, help="jpegs: training files per class")
    p.add_argument("--val", type=int, default=100, help="jpegs: validation files per class")
    args = p.parse_args(argv)
    if args.what == "arrays":
        prepare_arrays(args.data, args.dir)
    else:
        copy_jpegs(args.data, args.dir, {"train": args.train, "val": args.val})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
