"""A minimal 16-bit PNG codec for the colour cases Pillow cannot hold.

Pillow has no 16-bit-per-channel colour mode: it opens 48-bit RGB PNGs as 8-bit RGB (keeping
the high byte) and cannot write them. This module reads and writes non-interlaced 16-bit PNGs
of colour type 0 (grey), 2 (RGB), 4 (grey + alpha) and 6 (RGBA) with the standard library's
``zlib`` and numpy only (PNG specification, ISO/IEC 15948:2004). Everything else goes through
Pillow in :mod:`indiflow.data.io`.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
_COLOUR_TYPE = {1: 0, 3: 2}  # channels written -> PNG colour type


def png_header(head: bytes) -> tuple[int, int] | None:
    """Return ``(bit_depth, colour_type)`` from the first 26+ bytes of a PNG, else None."""
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def write_png16(path: Path, pixels: np.ndarray) -> None:
    """Write ``pixels`` (H, W, C) uint16 with C in {1, 3} as a 16-bit PNG, rows unfiltered."""
    height, width, channels = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 16, _COLOUR_TYPE[channels], 0, 0, 0)
    rows = (
        np.ascontiguousarray(pixels, dtype=">u2").reshape(height, width * channels).view(np.uint8)
    )
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter byte 0
    body = _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
    path.write_bytes(PNG_SIGNATURE + body + _chunk(b"IEND", b""))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _unfilter(raw: np.ndarray, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-row PNG filters (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    rows = raw.reshape(height, 1 + stride)
    out = np.zeros((height, stride), np.uint8)
    prior = np.zeros(stride, np.uint8)
    for r in range(height):
        kind, line = int(rows[r, 0]), rows[r, 1:]
        if kind == 0:
            out[r] = line
        elif kind == 1:  # running sum per byte lane, modulo 256
            out[r] = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif kind == 2:
            out[r] = line + prior
        elif kind in (3, 4):  # sequential across pixels: loop over pixels, vectorised over bytes
            recon = np.zeros(stride + bpp, np.int32)  # bpp leading zeros stand for "left of x=0"
            up = np.concatenate([np.zeros(bpp, np.int32), prior.astype(np.int32)])
            filt = line.astype(np.int32)
            for i in range(0, stride, bpp):
                left, above, corner = recon[i : i + bpp], up[i + bpp : i + 2 * bpp], up[i : i + bpp]
                pred = (left + above) // 2 if kind == 3 else _paeth(left, above, corner)
                recon[i + bpp : i + 2 * bpp] = (filt[i : i + bpp] + pred) % 256
            out[r] = recon[bpp:].astype(np.uint8)
        else:
            raise ValueError(f"unknown PNG filter type {kind} in row {r}")
        prior = out[r]
    return out


def read_png16(data: bytes) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG into (H, W, C) uint16; ValueError if it cannot."""
    pos, header, idat = len(PNG_SIGNATURE), None, []
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length] or b"\0\0\0\0")
        if len(body) != length or zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"PNG chunk {kind!r} is truncated or fails its CRC")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise ValueError("PNG has no IHDR or no IDAT chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 16 or colour not in _CHANNELS or interlace != 0:
        raise ValueError(
            f"only non-interlaced 16-bit PNGs of colour type 0, 2, 4 or 6 are decoded here; got "
            f"bit depth {depth}, colour type {colour}, interlace {interlace}"
        )
    channels = _CHANNELS[colour]
    stride = width * channels * 2
    try:
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    except zlib.error as error:
        raise ValueError(f"PNG image data does not decompress: {error}") from error
    if raw.size != height * (1 + stride):
        raise ValueError(f"PNG image data holds {raw.size} bytes, expected {height * (1 + stride)}")
    rows = _unfilter(raw, height, stride, channels * 2)
    return rows.view(">u2").astype(np.uint16).reshape(height, width, channels)
