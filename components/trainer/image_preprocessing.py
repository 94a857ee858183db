"""The training crops: augmented views read straight from the photo bytes.

Evaluation and serving take the Transform graph's image (components/transform/preprocessing.py: decoded and
resized whole); training decodes only a random window of each photo in one fused op, which the Transform graph
cannot do without decoding the whole photo first (docs/transform.md has the measured difference). Both end in
the same whole pixel levels; the random flip, the colour jitter and the value range the backbone wants are the
model's first layers, on the accelerator.
"""
import tensorflow as tf

CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (0.75, 1.33)


def _resize_uint8(image: tf.Tensor, size: int) -> tf.Tensor:
    """Bilinear resize of uint8 pixels, truncated back to uint8 levels.

    Without antialiasing each output is a convex combination of input pixels, so it stays in [0, 255]
    (IEEE rounding is monotone) and needs no clip. Level k stands for a resized value in [k, k + 1), as in
    the Transform graph's image: the model's `scale_to_unit` layer maps it to the middle of that range,
    which is what rounding here would give on average, one pass over the float image cheaper.
    """
    resized = tf.image.resize(image, [size, size], method="bilinear", antialias=False)
    return tf.cast(resized, tf.uint8)


def train_image(jpeg_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """Inception-style random crop decoded in one fused op, resize: uint8 [size, size, 3].

    The random flip is the model's `random_flip` layer (components/trainer/model.py).
    """
    shape = tf.io.extract_jpeg_shape(jpeg_bytes)
    begin, crop_size, _ = tf.image.sample_distorted_bounding_box(
        shape,
        bounding_boxes=tf.constant([0.0, 0.0, 1.0, 1.0], tf.float32, [1, 1, 4]),
        min_object_covered=0.1,
        aspect_ratio_range=CROP_ASPECT_RANGE,
        area_range=CROP_AREA_RANGE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    offset_y, offset_x, _ = tf.unstack(begin)
    height, width, _ = tf.unstack(crop_size)
    window = tf.stack([offset_y, offset_x, height, width])
    image = tf.io.decode_and_crop_jpeg(jpeg_bytes, window, channels=3)
    return _resize_uint8(image, size)
