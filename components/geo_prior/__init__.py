"""The location prior ("seen nearby"): a second model trained on where taxa were observed.

`encoding` turns coordinates and dates into network inputs (shared with tf.Transform), `model` is the
residual network and its presence-only loss, `presences` reads and filters training locations, `export`
writes the served SavedModel and `thresholds.csv`, `run` is the geo Trainer's `run_fn`, and `scoring`
combines vision and geo scores and rolls them up the tree, for the served graph and the CLI alike.
"""
