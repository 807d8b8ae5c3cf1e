"""NumPy's array files: memory-mapped reading of `.npz` archives, aligned and streamed writing of them, and `.npy`.

The standard NTU RGB+D / PKU-MMD files are `np.savez` archives of a few large arrays (a training split of
NTU-120 is 7 GB). `load_npz` maps the uncompressed members in place instead of reading them; `NpzWriter`
writes such archives row by row with every array's data aligned, so that those maps are fast to use;
`realign_npz` rewrites an `np.savez` file that way. `load_npy` reads a `.npy` file. Nothing is ever unpickled: a
file that is not what it claims, holds Python objects or is cut short raises a `ValueError` that names it.
"""

from __future__ import annotations

import os
import struct
import time
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from typing import IO

import numpy as np

# `NpzWriter` starts each array's data at a multiple of this many bytes in the file.
ALIGNMENT = 64
# Zip extra-field ID of the padding that aligns the data (the one Android's zipalign writes).
_ALIGNMENT_EXTRA_ID = 0xD935
_NPY_MAGIC = b"\x93NUMPY"


def _read_npy_header(file: IO[bytes], what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the `.npy` header at the file's position, which it leaves at the data.

    Raises:
        ValueError: naming `what`, when there is no `.npy` header or the array holds Python objects.
    """
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(file)
        else:
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(file)
    except ValueError as error:
        raise ValueError(
            f"{what} is not a NumPy array: it does not start with a valid .npy header ({error}); pass a file written "
            "by np.save or np.savez."
        ) from None
    if dtype.hasobject:
        raise ValueError(
            f"{what} holds Python objects (dtype {dtype}), which mamp-hub does not load: unpickling them could run "
            "any code. Save the joints as numbers instead, e.g. np.save(path, np.asarray(joints, dtype=np.float32))."
        )
    return shape, fortran_order, dtype


def _damaged(what: str, error: Exception) -> ValueError:
    return ValueError(f"{what} is truncated or damaged ({error}); write the file again, or pass another copy.")


def load_npy(path: str | os.PathLike) -> np.ndarray:
    """The array of a `.npy` file, read into memory; nothing is unpickled.

    Raises:
        ValueError: naming the file, when it is not a `.npy` file, holds Python objects, or is cut short.
    """
    what = repr(os.fspath(path))
    with open(path, "rb") as file:
        _read_npy_header(file, what)
        file.seek(0)
        try:
            return np.lib.format.read_array(file, allow_pickle=False)
        except (ValueError, EOFError) as error:
            raise _damaged(what, error) from None


def _npz_archive(path: str | os.PathLike) -> zipfile.ZipFile:
    """The zip archive of an `.npz` file; a `ValueError` names the file when it is none."""
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        with open(path, "rb") as file:
            is_npy = file.read(len(_NPY_MAGIC)) == _NPY_MAGIC
        kind = "a .npy file of one array" if is_npy else "no zip archive (cut short, or in another format)"
        raise ValueError(
            f"{os.fspath(path)!r} is {kind}, not an .npz file of named arrays (np.savez); pass an .npz file"
            + (", or load this one with np.load." if is_npy else ".")
        ) from None


def npz_array_names(path: str | os.PathLike) -> list[str]:
    """The names of the arrays in an `.npz` file, without reading them."""
    with _npz_archive(path) as archive:
        return [info.filename[: -len(".npy")] for info in archive.infolist() if info.filename.endswith(".npy")]


def _memmap_npz_member(path: str | os.PathLike, info: zipfile.ZipInfo, what: str) -> np.ndarray | None:
    """Memory map of one uncompressed `.npy` member of a zip archive (None when it cannot be mapped)."""
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        local_header = file.read(30)
        if local_header[:4] != b"PK\x03\x04":
            return None
        # The member's data follows the local header, its name and its extra field (zip64 sizes live there).
        name_length = int.from_bytes(local_header[26:28], "little")
        extra_length = int.from_bytes(local_header[28:30], "little")
        file.seek(info.header_offset + 30 + name_length + extra_length)
        shape, fortran_order, dtype = _read_npy_header(file, what)
        offset = file.tell()
    if 0 in shape:
        return None
    try:
        return np.memmap(path, dtype=dtype, mode="r", shape=shape, order="F" if fortran_order else "C", offset=offset)
    except ValueError as error:  # the file ends before the array does
        raise _damaged(what, error) from None


def load_npz(path: str | os.PathLike, keys: Iterable[str] | None = None, mmap: bool = True) -> dict[str, np.ndarray]:
    """Arrays of an `.npz` file, memory-mapped where the archive stores them uncompressed.

    `np.load(..., mmap_mode="r")` ignores `mmap_mode` for `.npz` files and reads each array whole; a
    training split of NTU-120 is 7 GB. `np.savez` (and the preparation scripts here) store members
    uncompressed, so they can be mapped in place; compressed members (`np.savez_compressed`) are read.
    Nothing is unpickled.

    Args:
        path: the `.npz` file.
        keys: the names of the arrays to return (default: all).
        mmap: map uncompressed arrays instead of reading them.

    Raises:
        ValueError: naming the file (and the array), when it is not an `.npz` file, lacks an array of `keys`, or an
            array holds Python objects or is cut short.
    """
    if isinstance(keys, (str, bytes)):
        raise ValueError(f"keys={keys!r} is one string; pass a list of array names, e.g. [{keys!r}].")
    with _npz_archive(path) as archive:
        members = {info.filename[: -len(".npy")]: info for info in archive.infolist() if info.filename.endswith(".npy")}
        keys = list(members) if keys is None else list(keys)
        missing = [key for key in keys if key not in members]
        if missing:
            raise ValueError(f"{os.fspath(path)!r} has no array named {missing}; it holds {sorted(members)}.")
        arrays = {}
        for key in keys:
            info, what = members[key], f"Array {key!r} of {os.fspath(path)!r}"
            array = None
            if mmap and info.compress_type == zipfile.ZIP_STORED:
                array = _memmap_npz_member(path, info, what)
            if array is None:
                with archive.open(info) as member:
                    _read_npy_header(member, what)
                    member.seek(0)
                    try:
                        array = np.lib.format.read_array(member, allow_pickle=False)
                    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
                        raise _damaged(what, error) from None
            arrays[key] = array
    return arrays


class NpzWriter:
    """Writes an `.npz` file (uncompressed, loadable by `np.load` and mappable by `load_npz`) array by array.

    `add_rows` streams an array row by row, so a file larger than memory (NTU-120: 20 GB) can be written.
    Each array's data starts at a multiple of `ALIGNMENT` (64) bytes in the file, so its memory maps are
    aligned. The file appears under its name only when the writer closes without error.

    Example:

    ```python
    with NpzWriter("out.npz") as writer:
        writer.add("y_train", labels)
        writer.add_rows("x_train", (row for row in rows), num_rows=len(labels), row_shape=(300, 150), dtype=np.float32)
    ```
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._partial_path = self.path + ".partial"
        self._archive = zipfile.ZipFile(self._partial_path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def add(self, name: str, array: np.ndarray) -> None:
        array = np.asanyarray(array)
        if array.dtype.hasobject:
            raise ValueError(f"Array {name!r} holds Python objects; store numbers or fixed-width strings.")
        with self._open_member(name) as member:
            np.lib.format.write_array(member, np.asarray(array, order="C"), allow_pickle=False)

    def add_rows(
        self, name: str, rows: Iterable[np.ndarray], num_rows: int, row_shape: Sequence[int], dtype: np.dtype
    ) -> None:
        """Writes `num_rows` arrays of shape `row_shape` as one array (num_rows, *row_shape) of `dtype`."""
        dtype, row_shape = np.dtype(dtype), tuple(row_shape)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (num_rows, *row_shape)}
        written = 0
        with self._open_member(name) as member:
            np.lib.format.write_array_header_2_0(member, header)
            for row in rows:
                if row.shape != row_shape:
                    raise ValueError(f"Row {written} of {name!r} has shape {row.shape}, expected {row_shape}.")
                member.write(np.ascontiguousarray(row, dtype=dtype).tobytes())
                written += 1
        if written != num_rows:
            raise ValueError(f"{name!r} was declared with {num_rows} rows but got {written}.")

    def _open_member(self, name: str) -> IO[bytes]:
        """Opens member `name.npy` for writing, its data starting at a multiple of `ALIGNMENT` bytes in the file.

        A `.npy` header fills a multiple of 64 bytes, so the array's data is aligned too, and so are memory maps
        of it (`load_npz`). NumPy treats a misaligned array as unaligned and copies it whole before `take`,
        matrix products and the like (`np.savez` members start wherever the zip headers end).
        """
        info = zipfile.ZipInfo(name + ".npy", date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_STORED
        # Local header: 30 bytes, the name, the extra field, then the zip64 sizes (20 bytes, forced below).
        unpadded = self._archive.fp.tell() + 30 + len(info.filename.encode()) + 20
        padding = -unpadded % ALIGNMENT
        if padding:
            padding += ALIGNMENT if padding < 4 else 0  # an extra-field block needs 4 bytes of header
            info.extra = struct.pack("<HH", _ALIGNMENT_EXTRA_ID, padding - 4) + bytes(padding - 4)
        return self._archive.open(info, "w", force_zip64=True)

    def close(self) -> None:
        self._archive.close()
        os.replace(self._partial_path, self.path)

    def __enter__(self) -> NpzWriter:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self._archive.close()
            os.remove(self._partial_path)


def realign_npz(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Rewrites an `.npz` file with `NpzWriter`, so every array starts at an aligned offset.

    `np.savez` (and so most shared NTU files) starts arrays wherever the zip headers end; NumPy copies such
    misaligned memory maps before most operations, which slows the data sets down. Streams the arrays row by row
    (files larger than memory are fine); nothing is unpickled.
    """
    with NpzWriter(destination) as writer:
        for name, array in load_npz(source).items():
            if array.ndim == 0:
                writer.add(name, array)
            else:
                writer.add_rows(name, iter(array), num_rows=len(array), row_shape=array.shape[1:], dtype=array.dtype)
