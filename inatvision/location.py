"""When an example "has a location": the one rule, for NumPy and for TensorFlow graphs (docs/data.md).

A location is usable when both coordinates are finite and in range (|latitude| <= 90, |longitude| <= 180) and
its positional accuracy is absent or at most `max_positional_accuracy_m` (config `geo.max_positional_accuracy_m`).
An absent value is `None` or NaN. An absent accuracy counts as usable: `serving_default` has no accuracy input,
and a photo without one is not known to be imprecise. 0/0 is a place like any other (the export keeps it).

Both forms compare in float32, the type the tf.Examples store, so they agree on every input
(tests/test_location.py). Without an accuracy (`positional_accuracy=None`) only the coordinates are checked.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

MAX_LATITUDE = 90.0
MAX_LONGITUDE = 180.0


def _rule(absolute, isnan, latitude, longitude, positional_accuracy, max_positional_accuracy_m):
    """The rule once, on arrays or tensors (`absolute`, `isnan`: NumPy's or TensorFlow's); NaN and infinities
    compare false. NaN is tested for explicitly: Grappler rewrites not(a > b) to a <= b, which NaN fails."""
    located = (absolute(latitude) <= MAX_LATITUDE) & (absolute(longitude) <= MAX_LONGITUDE)
    if positional_accuracy is None:
        return located
    if max_positional_accuracy_m is None:
        raise ValueError("a positional accuracy needs max_positional_accuracy_m (geo.max_positional_accuracy_m)")
    return located & (isnan(positional_accuracy) | (positional_accuracy <= max_positional_accuracy_m))


def _float32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)  # None becomes NaN


def has_location(latitude, longitude, positional_accuracy=None,
                 max_positional_accuracy_m: Optional[float] = None) -> np.ndarray:
    """bool, element-wise (a 0-d array for scalars): the coordinates, and the accuracy when given, are usable."""
    accuracy = None if positional_accuracy is None else _float32(positional_accuracy)
    limit = None if max_positional_accuracy_m is None else np.float32(max_positional_accuracy_m)
    return np.asarray(_rule(np.abs, np.isnan, _float32(latitude), _float32(longitude), accuracy, limit), dtype=bool)


def has_location_tf(latitude, longitude, positional_accuracy=None, max_positional_accuracy_m: Optional[float] = None):
    """The same rule as a bool tensor, for graphs (Transform, the served model)."""
    import tensorflow as tf

    accuracy = None if positional_accuracy is None else tf.cast(positional_accuracy, tf.float32)
    limit = None if max_positional_accuracy_m is None else tf.constant(max_positional_accuracy_m, tf.float32)
    return _rule(tf.abs, tf.math.is_nan, tf.cast(latitude, tf.float32), tf.cast(longitude, tf.float32), accuracy,
                 limit)
