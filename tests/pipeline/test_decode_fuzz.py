"""A fuzz test of the image decoder (issue 23): damaged files of every format Pillow reads,
made here from small seeds (seeded, so each run tries the same files), must each be decoded or
refused by name (UndecodableImage, which prepare records or skip_corrupt drops); no other
exception may escape, and no file may crash or hang the process that decodes it."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
from helpers import ROOT, pythonpath
from PIL import Image

MUTANTS = 40  # random ones per format, besides the undamaged seed and the header sweep
HEADER = 128  # bytes of each seed whose 4-byte words the sweep sets to 0 and to all ones
SEED = 23
SIZE = (6, 5)


def _saved(fmt: str) -> bytes | None:
    """A small image in `fmt`, written by Pillow; None where Pillow cannot write one."""
    pixels = np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    for mode in ("RGB", "L", "RGBA", "1", "P"):
        buffer = io.BytesIO()
        try:
            Image.fromarray(pixels).convert(mode).save(buffer, fmt)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return buffer.getvalue()
    return None


def _fits() -> bytes:
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =      "
             "              2", "NAXIS1  =                    6", "NAXIS2  =                    5",
             "END"]  # fmt: skip
    header = "".join(c.ljust(80) for c in cards).ljust(2880).encode()
    return header + bytes(range(30)).ljust(2880, b"\0")


def _psd() -> bytes:
    w, h = SIZE
    head = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, h, w, 8, 3)
    return head + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + bytes(range(3 * w * h))


def _sun() -> bytes:
    w, h = SIZE
    row = bytes(range(w)) + b"\0" * (w % 2)  # rows padded to 16 bits
    return struct.pack(">8I", 0x59A66A95, w, h, 8, len(row) * h, 1, 0, 0) + row * h


def _gbr() -> bytes:
    w, h = SIZE
    name = b"fuzz\0"
    return (
        struct.pack(">5I", 28 + len(name), 2, w, h, 1)
        + b"GIMP"
        + struct.pack(">I", 10)
        + (name + bytes(range(w * h)))
    )


def _xpm() -> bytes:
    rows = ['"ababab"', '"bababa"', '"ababab"', '"bababa"', '"ababab"']
    body = ['"6 5 2 1"', '"a c #FF0000"', '"b c #0000FF"', *rows]
    return b"/* XPM */\nstatic char *x[] = {\n" + ",\n".join(body).encode() + b"\n};\n"


def _from_pcx(header: bytes) -> bytes:
    return header + _saved("PCX")


def _im() -> bytes:
    # By hand: Pillow's IM writer warns that the format is deprecated (and will go in Pillow 15).
    w, h = SIZE
    header = f"Image type: RGB image\r\nName: fuzz\r\nImage size (x*y): {w}*{h}\r\n".encode()
    return header.ljust(511, b"\0") + b"\x1a" + bytes(range(w)) * 3 * h


def _cur() -> bytes:
    ico = bytearray(_saved("ICO"))
    ico[2:4] = b"\2\0"  # type 2: a cursor, the same directory as an icon
    return bytes(ico)


# Formats Pillow reads but cannot write (and IM): a seed made by hand where the layout is simple,
# else the format's signature followed by bytes (each mutant then tests its header parsing).
HAND_MADE = {
    "CUR": _cur,
    "DCX": lambda: _from_pcx(struct.pack("<III", 0x3ADE68B1, 12, 0)),
    "FITS": _fits,
    "GBR": _gbr,
    "IM": _im,
    "PSD": _psd,
    "SUN": _sun,
    "XPM": _xpm,
    "XVTHUMB": lambda: b"P7 332\n#XVVERSION:\n#END_OF_COMMENTS\n6 5 255\n" + bytes(range(30)),
}
SIGNATURES = {
    "BUFR": b"BUFR",
    "GRIB": b"GRIB",
    "HDF5": b"\x89HDF\r\n\x1a\n",
    "WMF": b"\xd7\xcd\xc6\x9a\0\0",
    "FLI": struct.pack("<IHHHHHH", 2000, 0xAF11, 1, 6, 5, 8, 0),
    "FTEX": b"FTEX" + struct.pack("<6I", 0x4000000, 6, 5, 1, 1, 0),
    "MCIDAS": b"\0\0\0\0\0\0\0\x04",
    "MPEG": b"\0\0\1\xb3\x00\x60\x05",
    "PIXAR": b"\200\350\000\000",
    "PCD": bytes(2048) + b"PCD_IPI",
    "IMT": b"width 6\x0cheight 5\x0cpixel n8\x0c\x1a",
    "IPTC": b"\x1c\x01\x5a\x00\x03\x1b\x25\x47",
}


def seeds() -> dict[str, bytes]:
    """One small file per format Pillow opens."""
    Image.init()
    out = {}
    for fmt in sorted(Image.OPEN):
        data = HAND_MADE[fmt]() if fmt in HAND_MADE else _saved(fmt)
        if data is None:
            tail = np.random.default_rng(len(fmt)).integers(0, 256, 256, dtype=np.uint8)
            data = SIGNATURES[fmt] + tail.tobytes()
        out[fmt] = data
    return out


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """`data` damaged one of the ways files are: truncated; bits flipped anywhere; header fields
    (sizes, counts, offsets, flags in the first 256 bytes) set to random, all-ones or zero
    values; bytes inserted."""
    b = bytearray(data)
    kind = rng.integers(5)
    if kind == 0:
        return bytes(b[: rng.integers(0, len(b))])
    if kind == 1:
        for i in rng.integers(0, len(b), rng.integers(1, 9)):
            b[i] ^= 1 << int(rng.integers(8))
        return bytes(b)
    if kind in (2, 3):  # 1 to 4 header fields of 1, 2 or 4 bytes
        for _ in range(rng.integers(1, 5)):
            at, width = int(rng.integers(0, max(1, min(len(b), 256)))), int(rng.choice([1, 2, 4]))
            value = rng.integers(0, 256, width, dtype=np.uint8).tobytes()
            b[at : at + width] = value if kind == 2 else bytes([rng.choice([0, 255])]) * width
        return bytes(b)
    at = int(rng.integers(0, len(b) + 1))
    noise = rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8).tobytes()
    return bytes(b[:at]) + noise + bytes(b[at:])


def damaged(data: bytes, rng: np.random.Generator) -> list[bytes]:
    """The undamaged seed; every aligned 4-byte word of its header zeroed, then set to all ones
    (each size, count, offset and flag field hit once: random damage rarely lands on the one
    that matters, e.g. DDS's pixel format flags); and MUTANTS random mutants."""
    sweep = [
        data[:at] + fill * 4 + data[at + 4 :]
        for fill in (b"\0", b"\xff")
        for at in range(0, min(len(data), HEADER) - 3, 4)
    ]
    return [data, *sweep, *(mutate(data, rng) for _ in range(MUTANTS))]


# Decodes every file of a folder as the prepare stage does, one JSON line per file; the name is
# printed first, so that a crash or a hang names the file that caused it.
DECODE_ALL = """
import json, sys
from pathlib import Path
from PIL import Image
from simclr.data.imagefolder import UndecodableImage, decode
Image.MAX_IMAGE_PIXELS = 4_000_000  # the test's memory; a larger mutant is refused as a bomb
for path in sorted(Path(sys.argv[1]).iterdir()):
    print(json.dumps({"file": path.name}), flush=True)
    try:
        x = decode(path, "RGB", 8)
        ok = x.shape == (8, 8, 3) and x.dtype.name == "uint8"
        out = {"outcome": "decoded" if ok else f"wrong array {x.shape} {x.dtype}"}
    except UndecodableImage as e:
        named = str(e).startswith(f"{path}: cannot decode image (")
        out = {"outcome": "refused" if named else f"unnamed refusal: {e}"}
    except Exception as e:
        out = {"outcome": f"escaped: {type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)
"""


def test_damaged_files_of_every_format_are_decoded_or_refused_by_name(tmp_path):
    start = time.perf_counter()
    rng = np.random.default_rng(SEED)
    extension = {}
    for ext, fmt in Image.registered_extensions().items():
        extension.setdefault(fmt, ext)
    files = {}
    for fmt, data in seeds().items():
        for i, mutant in enumerate(damaged(data, rng)):
            name = f"{fmt}-{i:03d}{extension.get(fmt, '.img')}"
            (tmp_path / name).write_bytes(mutant)
            files[name] = fmt
    r = subprocess.run(
        [sys.executable, "-c", DECODE_ALL, str(tmp_path)], capture_output=True, text=True,
        timeout=120, env={**os.environ, "PYTHONPATH": pythonpath(ROOT)},
    )  # fmt: skip
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    outcomes = {a["file"]: b["outcome"] for a, b in zip(lines[::2], lines[1::2], strict=False)}
    assert r.returncode == 0 and len(outcomes) == len(files), (
        f"the decoder died (exit {r.returncode}) at {lines[-1]}: {r.stderr[-2000:]}"
    )
    bad = {f: o for f, o in outcomes.items() if o not in ("decoded", "refused")}
    assert bad == {}, bad
    decoded = {f for f, o in outcomes.items() if o == "decoded"}
    seeds_read = {files[f] for f in decoded if f.split("-")[-1].startswith("000.")}
    seconds = time.perf_counter() - start
    print(
        f"fuzz: {len(files)} files of {len(set(files.values()))} formats in {seconds:.1f} s: "
        f"{len(decoded)} decoded, {len(files) - len(decoded)} refused by name; undamaged seeds "
        f"decoded in {len(seeds_read)} formats"
    )
    # The seeds are real files of their formats (not all of them: Pillow identifies some
    # formats, e.g. EPS without Ghostscript, MPEG, BUFR, but cannot decode them).
    assert {"BMP", "GIF", "JPEG", "PNG", "PSD", "SUN", "TIFF", "WEBP", "XPM"} <= seeds_read
