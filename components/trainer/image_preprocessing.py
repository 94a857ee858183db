"""Image preprocessing shared by training, evaluation, serving and the benchmarks.

The CPU part ends in uint8 (decode, crop, resize); the rest (the random flip, scaling to
[0, 1], colour jitter) runs as the model's first layers, where it is cheap. Training
and evaluation differ in one op only: the crop. The exported serving signatures call
`eval_image` itself, so served inputs are exactly the evaluation inputs.
"""
import tensorflow as tf

CENTRAL_CROP_FRACTION = 0.875
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RANGE = (0.75, 1.33)


def _resize_uint8(image: tf.Tensor, size: int) -> tf.Tensor:
    """Bilinear resize of uint8 pixels, truncated back to uint8 levels.

    Without antialiasing each output is a convex combination of input pixels, so it stays in [0, 255]
    (IEEE rounding is monotone) and needs no clip. Level k stands for a resized value in [k, k + 1): the
    model's `scale_to_unit` layer maps it to the middle of that range, which is what rounding here would
    give on average, one pass over the float image cheaper (benchmarks/input_pipeline.py).
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


def eval_image(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """Deterministic path: decode, central crop of 0.875, resize: uint8 [size, size, 3]."""
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image = tf.image.central_crop(image, CENTRAL_CROP_FRACTION)
    return _resize_uint8(image, size)


def eval_images(image_bytes: tf.Tensor, size: int) -> tf.Tensor:
    """`eval_image` over a batch of encoded photos: uint8 [batch, size, size, 3]."""
    return tf.map_fn(
        lambda one: eval_image(one, size),
        image_bytes,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
    )
