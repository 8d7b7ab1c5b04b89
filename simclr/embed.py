"""Embeddings of a user's images: h = f(x) (what evaluation uses) for every image of a folder
or a prepared dataset, written to Parquet with one row per image.

Images are streamed: decoded in batches on threads (the next batch decodes while the encoder
runs on this one), embedded, and written in row groups, so memory stays flat in the number of
images. The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from simclr.data.imagefolder import UndecodableImage, image_extensions, scan
from simclr.data.prepared import load_manifest, load_prepared, read_rows
from simclr.device import to_images
from simclr.encoder import Preprocessing
from simclr.errors import PipelineError
from simclr.io import atomic_path
from simclr.models import Encoder
from simclr.progress import track

log = logging.getLogger("simclr.embed")

BATCH_SIZE = 256
ROW_GROUP_ROWS = 4096  # rows buffered per Parquet row group


@dataclass
class Embedded:
    """What `embed` wrote."""

    path: Path
    rows: int
    dim: int
    seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)

    @property
    def images_per_s(self) -> float:
        return self.rows / max(self.seconds, 1e-9)


# A batch to embed: its columns other than h (path, label, ...), and its uint8 NHWC images
Batch = tuple[dict[str, list], np.ndarray]


def is_prepared(source: Path) -> bool:
    """A prepared dataset (the prepare stage's output) rather than an image folder."""
    return (source / "classes.json").is_file()


def list_folder(root: Path) -> tuple[list[str], list[str | None]]:
    """Relative paths and class names of the images under `root`: ``root/<class>/<files>`` as
    the prepare stage reads it, or, in a folder without subfolders, the image files in it (no
    labels)."""
    if root.is_dir() and not any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        extensions = image_extensions()
        paths = sorted(
            p.name
            for p in root.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions
        )
        if not paths:
            raise PipelineError(f"{root}: no image files here and no class subfolders")
        return paths, [None] * len(paths)
    classes, paths, labels = scan(root)
    return paths, [classes[label] for label in labels]


def folder_batches(
    root: Path,
    prep: Preprocessing,
    batch_size: int,
    workers: int,
    skip_bad: bool,
    skipped: list[tuple[str, str]],
) -> tuple[int, Iterator[Batch]]:
    """The number of image files under `root`, and their batches, decoded on `workers` threads.
    A file that does not decode raises UndecodableImage, or with `skip_bad` is logged, left out
    and added to `skipped`."""
    paths, labels = list_folder(root)

    def attempt(rel: str) -> np.ndarray | None:
        try:
            return prep.file(root / rel)
        except UndecodableImage as e:
            if not skip_bad:
                raise
            log.warning("skipped %s: %s", root / rel, e.reason)
            skipped.append((rel, e.reason))
            return None

    def batches() -> Iterator[Batch]:
        with ThreadPoolExecutor(workers) as pool:
            pending = None
            for start in range(0, len(paths), batch_size):
                # map submits the whole batch now: it decodes while the last one is embedded
                part = slice(start, start + batch_size)
                decoding = (paths[part], labels[part], pool.map(attempt, paths[part]))
                if pending is not None:
                    yield _assemble(*pending)
                pending = decoding
            if pending is not None:
                yield _assemble(*pending)

    return len(paths), batches()


def _assemble(paths: list[str], labels: list, images: Iterator) -> Batch:
    decoded = list(images)
    keep = [i for i, img in enumerate(decoded) if img is not None]
    columns = {"path": [paths[i] for i in keep], "label": [labels[i] for i in keep]}
    if not keep:
        return columns, np.empty((0,), dtype=np.uint8)
    return columns, np.stack([decoded[i] for i in keep])


def prepared_batches(root: Path, prep: Preprocessing, batch_size: int) -> tuple[int, Iterator]:
    """The number of images of a prepared dataset (every split), and their batches; `path` is
    the source file where the manifest has one, else ``<split>/<index>``."""
    data = load_prepared(root)
    channels = data.train.images.shape[-1]
    if channels != prep.channels:
        raise PipelineError(
            f"{root}: images have {channels} channels but the checkpoint expects "
            f"{prep.channels}; prepare the dataset with channels: {prep.channels}"
        )
    sources = load_manifest(root).set_index(["split", "index"])["source"]
    names = list(data.class_names)

    def batches() -> Iterator[Batch]:
        for split, part in data.splits().items():
            for start in range(0, len(part.images), batch_size):
                index = range(start, min(start + batch_size, len(part.images)))
                paths = [sources.get((split, i)) or f"{split}/{i}" for i in index]
                labels = part.labels[start : index.stop]
                columns = {
                    "path": paths,
                    "label": [names[y] if y >= 0 else None for y in labels],
                    "split": [split] * len(index),
                    "index": list(index),
                }
                yield columns, read_rows(part.images, slice(start, index.stop))

    return sum(len(p.images) for p in data.splits().values()), batches()


def embed(
    encoder: Encoder,
    prep: Preprocessing,
    source: str | Path,
    out: str | Path,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
    skip_bad: bool = False,
    metadata: dict | None = None,
) -> Embedded:
    """h for every image of `source` (an image folder or a prepared dataset) -> Parquet `out`:
    columns path, label (class name, null without classes), for a prepared dataset split and
    index, and h (a fixed-size list of float32). `metadata` goes into the file's key-value
    metadata under "simclr", as JSON."""
    source, out = Path(source), Path(out)
    if batch_size < 1:
        raise PipelineError(f"batch size {batch_size}: must be at least 1")
    skipped: list[tuple[str, str]] = []
    start = time.perf_counter()
    prepared = is_prepared(source)
    if prepared:
        total, batches = prepared_batches(source, prep, batch_size)
    else:
        threads = workers or os.cpu_count() or 1
        total, batches = folder_batches(source, prep, batch_size, threads, skip_bad, skipped)
    schema = _schema(encoder.out_dim, prepared).with_metadata(
        {"simclr": json.dumps(metadata or {})}
    )
    batches = track(batches, "embedding", batch_size, total)
    with atomic_path(out) as tmp:
        rows = _write(encoder, prep.device, batches, tmp, schema)
        if not rows:  # nothing is written
            raise PipelineError(f"{source}: none of the {total} image files could be decoded")
    return Embedded(out, rows, encoder.out_dim, time.perf_counter() - start, sorted(skipped))


@torch.no_grad()
def _write(encoder: Encoder, device, batches, path: Path, schema: pa.Schema) -> int:
    """Embed `batches` into Parquet at `path`, a row group every ROW_GROUP_ROWS rows or more;
    the number of rows written."""
    encoder.eval()
    pending: list[pa.RecordBatch] = []
    rows = 0
    with pq.ParquetWriter(path, schema) as writer:
        for columns, images in batches:
            if len(images):
                h = encoder(to_images(images, device)).float().cpu().numpy()
                pending.append(_record_batch(columns, h, schema))
                rows += len(h)
            if pending and sum(b.num_rows for b in pending) >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending))
                pending = []
        if pending:
            writer.write_table(pa.Table.from_batches(pending))
    return rows


def _schema(dim: int, prepared: bool = False) -> pa.Schema:
    fields = [pa.field("path", pa.string()), pa.field("label", pa.string())]
    if prepared:
        fields += [pa.field("split", pa.string()), pa.field("index", pa.int64())]
    return pa.schema([*fields, pa.field("h", pa.list_(pa.float32(), dim))])


def _record_batch(columns: dict[str, list], h: np.ndarray, schema: pa.Schema) -> pa.RecordBatch:
    arrays = [pa.array(columns[f.name], f.type) for f in schema if f.name != "h"]
    flat = pa.array(h.reshape(-1), pa.float32())
    arrays.append(pa.FixedSizeListArray.from_arrays(flat, h.shape[1]))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
