"""Reading pickles of other people's files without running their code.

`pickle.load` calls whatever callable a file names, so a crafted demonstration or level
file can run any code while it is read. Our own formats hold no pickle at all; this module
exists only for files in the *original* layout (the released demonstrations and level
sets, and files of this project's first format), which are pickles of plain data.

:func:`restricted_loads` rebuilds only what those files contain: lists, tuples, dicts,
strings, bytes, numbers, booleans, None, and numpy arrays and scalars of plain numeric
dtypes. Every global a pickle names goes through :meth:`_RestrictedUnpickler.find_class`,
which hands out our own small rebuilding functions (never numpy's or anyone else's
callables) for the few names numpy writes and refuses every other name. Nothing else in a
pickle can call code: the remaining opcodes build containers and primitive values.

:func:`unpack_blosc_array` decodes the bytes of `blosc.pack_array` (blosc-compressed pickle
of an array; the images of the original layout) through the same unpickler.
"""
from __future__ import annotations

import io
import pickle
from typing import Any, Callable

import blosc
import numpy as np

_PLAIN_KINDS = "biuf"
"""numpy dtype kinds we rebuild: bool, signed and unsigned integers, floats."""


class UnsafePickleError(ValueError):
    """A pickle names something other than plain data (refused before anything runs)."""


def _plain_dtype(spec: Any, align: bool = False, copy: bool = True) -> np.dtype:
    """`numpy.dtype(spec, ...)` for plain numeric dtype strings only ('u1', '<i8', ...)."""
    if not isinstance(spec, str):
        raise UnsafePickleError(f"dtype {spec!r} is not a plain numeric type")
    dtype = np.dtype(spec)
    if dtype.kind not in _PLAIN_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafePickleError(f"dtype {spec!r} is not a plain numeric type")
    return dtype


def _checked(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in _PLAIN_KINDS or dtype.hasobject:
        raise UnsafePickleError(f"array dtype {dtype!r} is not a plain numeric type")
    return dtype


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: str) -> np.ndarray:
    """What numpy's `_frombuffer` does for protocol-5 pickles, for plain dtypes only."""
    if not isinstance(buffer, (bytes, bytearray)) or order not in ("C", "F"):
        raise UnsafePickleError("malformed array in pickle")
    array = np.frombuffer(bytes(buffer), dtype=_checked(dtype))
    return array.reshape(tuple(int(n) for n in shape), order=order).copy()


class _ArrayState:
    """Stand-in for `numpy.core.multiarray._reconstruct(ndarray, ...)`: collects the
    array's state (protocol < 5 pickles) so we rebuild the array ourselves."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise UnsafePickleError("malformed array state in pickle")
        _, shape, dtype, fortran, data = state
        if isinstance(data, str):  # protocol 0-2 pickles store the bytes as latin-1 text
            data = data.encode("latin-1")
        if not isinstance(data, (bytes, bytearray)):
            raise UnsafePickleError("array data in pickle is not raw bytes")
        array = np.frombuffer(bytes(data), dtype=_checked(dtype))
        self.array = array.reshape(tuple(int(n) for n in shape),
                                   order="F" if fortran else "C").copy()


class _NdarrayToken:
    """What a pickle gets for `numpy.ndarray`: a marker only `_reconstruct` accepts (so the
    real class, whose constructor could be called with odd arguments, is never handed out)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise UnsafePickleError("refused a direct call of numpy.ndarray in pickle")


_NDARRAY_TOKEN = _NdarrayToken()


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _ArrayState:
    if subtype is not _NDARRAY_TOKEN:
        raise UnsafePickleError("only plain numpy arrays are accepted")
    return _ArrayState()


def _scalar(dtype: Any, data: Any) -> Any:
    """`numpy.core.multiarray.scalar(dtype, bytes)` for plain dtypes: a numpy scalar."""
    if isinstance(data, str):
        data = data.encode("latin-1")
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError("malformed numpy scalar in pickle")
    return np.frombuffer(bytes(data), dtype=_checked(dtype), count=1)[0]


def _encode(text: Any, encoding: str = "latin1") -> bytes:
    """`_codecs.encode(text, 'latin1')`: how protocol-2 pickles spell bytes."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("unexpected call to codecs.encode in pickle")
    return text.encode("latin-1")


_ALLOWED: dict[tuple[str, str], Callable] = {}
for _core in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_core}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_core}.multiarray", "scalar")] = _scalar
    _ALLOWED[(f"{_core}.numeric", "_frombuffer")] = _frombuffer
_ALLOWED[("numpy", "ndarray")] = _NDARRAY_TOKEN
_ALLOWED[("numpy", "dtype")] = _plain_dtype
_ALLOWED[("_codecs", "encode")] = _encode
_ALLOWED[("codecs", "encode")] = _encode


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            found = _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refused to load {module}.{name}: the file names code, "
                                    "not data") from None
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent reference in pickle")


def _finish(obj: Any) -> Any:
    """Replace the collected array states by the arrays (recursively, containers only)."""
    if isinstance(obj, _ArrayState):
        if obj.array is None:
            raise UnsafePickleError("array without data in pickle")
        return obj.array
    if isinstance(obj, list):
        return [_finish(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(item) for item in obj)
    if isinstance(obj, dict):
        return {_finish(key): _finish(value) for key, value in obj.items()}
    if isinstance(obj, _NdarrayToken) or (callable(obj) and not isinstance(obj, np.generic)):
        raise UnsafePickleError("pickle holds a callable, not data")
    return obj


def restricted_load(handle: io.BufferedIOBase) -> Any:
    """Unpickle plain data (see the module docstring) from a binary file object."""
    return _finish(_RestrictedUnpickler(handle).load())


def restricted_loads(data: bytes) -> Any:
    """Unpickle plain data from bytes."""
    return restricted_load(io.BytesIO(data))


def unpack_blosc_array(packed: bytes) -> np.ndarray:
    """Decode `blosc.pack_array` bytes (a blosc-compressed pickle of one array) safely."""
    pickled = blosc.decompress(bytes(packed))
    array = restricted_loads(pickled)
    if not isinstance(array, np.ndarray):
        raise UnsafePickleError("blosc-packed data does not hold an array")
    return array
