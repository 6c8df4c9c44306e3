"""``__array_namespace_info__``: what this namespace supports (array API 2023.12 inspection)."""

from ..core import devices, dtypes

_KIND_NAMES = {
    "bool": (dtypes.bool_,),
    "signed integer": dtypes.SIGNED,
    "unsigned integer": dtypes.UNSIGNED,
    "integral": dtypes.INTEGER,
    "real floating": dtypes.FLOATING,
    "complex floating": dtypes.COMPLEX,
    "numeric": dtypes.NUMERIC,
}


class _Info:
    """The inspection object returned by ``fnx.numpy.__array_namespace_info__()``.

    >>> fnx.numpy.__array_namespace_info__().default_dtypes()["real floating"]
    dtype('float32')
    """

    __module__ = "fnx.numpy"

    def capabilities(self):
        # Boolean masks and unique_* have data-dependent shapes: supported eagerly, and an
        # fnx error under jit/vmap.
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def default_device(self):
        return devices.CPU

    def devices(self):
        return list(devices.devices())

    def default_dtypes(self, *, device=None):
        del device  # unused: every device has the same defaults
        return {
            "real floating": dtypes.default_float(),
            "complex floating": dtypes.default_complex(),
            "integral": dtypes.default_int(),
            "indexing": dtypes.int64,
        }

    def dtypes(self, *, device=None, kind=None):
        del device  # unused: every device supports every dtype
        if kind is None:
            chosen = dtypes.ALL
        else:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            chosen = []
            for k in kinds:
                if isinstance(k, str):
                    if k not in _KIND_NAMES:
                        raise ValueError(f"dtypes: unknown kind {k!r}; expected one of "
                                         f"{sorted(_KIND_NAMES)}")
                    chosen.extend(_KIND_NAMES[k])
                else:
                    chosen.append(dtypes.canonicalize(k))
        # float16 works in fnx but is not an array API dtype, so it is never listed
        return {d.name: d for d in dtypes.ALL if d in chosen and d != dtypes.float16}


_INFO = _Info()


def __array_namespace_info__():
    """The array API inspection namespace of ``fnx.numpy``.

    >>> fnx.numpy.__array_namespace_info__().default_device()
    device(type='cpu')
    """
    return _INFO


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
