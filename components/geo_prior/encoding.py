"""Location and date encodings (applied by the Transform graph only) and the geo network's input built from them.

A location becomes sin/cos of pi*longitude/180 and pi*latitude/90 (Mac Aodha et al. 2019), so that
longitude wraps around at the antimeridian. A day of year becomes sin/cos of its angle on the year; an
unknown day (any value outside 1..366, e.g. 0) becomes [0, 0], a point off that circle.
"""
from __future__ import annotations

import math

import tensorflow as tf

LOCATION_SIZE = 4
DATE_SIZE = 2
DAYS_PER_YEAR = 366.0


def encode_location(latitude, longitude) -> tf.Tensor:
    """[..., 4] float32: sin and cos of pi*longitude/180, then of pi*latitude/90."""
    lng = math.pi * tf.cast(longitude, tf.float32) / 180.0
    lat = math.pi * tf.cast(latitude, tf.float32) / 90.0
    return tf.stack([tf.sin(lng), tf.cos(lng), tf.sin(lat), tf.cos(lat)], axis=-1)


def encode_date(day_of_year) -> tf.Tensor:
    """[..., 2] float32: sin/cos of the day's angle on the year; [0, 0] when the day is unknown."""
    day = tf.cast(day_of_year, tf.float32)
    angle = 2.0 * math.pi * (day - 1.0) / DAYS_PER_YEAR
    known = tf.cast((day >= 1.0) & (day <= DAYS_PER_YEAR), tf.float32)
    return tf.stack([tf.sin(angle), tf.cos(angle)], axis=-1) * known[..., None]


def network_input(location_encoding, date_encoding, use_date: bool) -> tf.Tensor:
    """The geo network's input from the Transform graph's features: the location encoding, followed by the
    date encoding when `use_date`."""
    if not use_date:
        return tf.convert_to_tensor(location_encoding)
    return tf.concat([location_encoding, date_encoding], axis=-1)


def input_size(use_date: bool) -> int:
    return LOCATION_SIZE + (DATE_SIZE if use_date else 0)
