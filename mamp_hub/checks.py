"""Checks of the options and arrays that users pass to the package's functions, pipelines and processor.

A check takes a value and returns it as it is stored, or raises `ValueError` saying what the value must be
("must be True or False, got 'False'"); `checked(name, check, value)` puts the option's name in front, as `MampConfig`
names its fields. Types are checked, not converted: `bool("False")` is True and `int(2.7)` is 2, so a string, a float
or a bool never stands in for a flag or a count.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch

Value = TypeVar("Value")


def checked(name: str, check: Callable[[Any], Value], value: Any) -> Value:
    """`check(value)`, its error naming the option: "`name` must be ..., got ..."."""
    try:
        return check(value)
    except ValueError as error:
        raise ValueError(f"`{name}` {error}.") from None


def flag(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"must be True or False, got {value!r}")
    return bool(value)


def is_integer(value: Any) -> bool:
    """Whether `value` is an integer (Python's or NumPy's); bools are not."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def integer(value: Any) -> int:
    if not is_integer(value):
        raise ValueError(f"must be an integer, got {value!r}")
    return int(value)


def positive_int(value: Any) -> int:
    if not is_integer(value) or value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return int(value)


def finite_real(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    return float(value)


def real_array(array: Any, what: str) -> np.ndarray:
    """`array` (a numpy array, a torch tensor, nested lists of numbers) as a numpy array of real numbers, integer or
    floating, of its own dtype (a tensor is moved to the CPU; bfloat16, which numpy lacks, becomes float32).

    Raises:
        ValueError: naming `what`, for booleans, complex numbers, strings, Python objects or ragged lists.
    """
    given = array
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        if array.dtype == torch.bfloat16:
            array = array.float()
        array = array.numpy()
    try:
        array = np.asarray(array)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise ValueError(
            f"{what} is not an array of numbers ({error}); pass a numpy array or a torch tensor."
        ) from None
    if array.dtype.kind not in "iuf":
        got = (
            f"an array of dtype {array.dtype}"
            if isinstance(given, (np.ndarray, torch.Tensor))
            else "a " + (f"{type(given).__name__} {given!r}" if isinstance(given, str) else type(given).__name__)
        )
        raise ValueError(
            f"{what} must hold real coordinates (integers or floats), got {got}; pass a numpy array or a torch "
            "tensor of numbers."
        )
    return array
