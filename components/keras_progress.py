"""A Keras callback that reports epochs as progress lines, labelled with the component, with an ETA."""
import time

import tf_keras as keras

from inatvision import progress


class EpochProgress(keras.callbacks.Callback):
    """`epoch 3/4: loss 1.27, top1 0.65, val_top1 0.18 (38 s/epoch, ETA 38 s)`, every `every` epochs."""

    def __init__(self, component: str, epochs: int, every: int = 1, metrics=("loss", "top1", "val_top1")):
        super().__init__()
        self.component, self.epochs, self.every, self.metrics = component, epochs, max(1, every), metrics

    def on_train_begin(self, logs=None):
        self.started, self.first_epoch = time.monotonic(), None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:  # a resumed run starts past epoch 0
            self.first_epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done % self.every and done != self.epochs:
            return
        per_epoch = (time.monotonic() - self.started) / (done - self.first_epoch)
        values = ", ".join(f"{name} {logs[name]:.3g}" for name in self.metrics if name in (logs or {}))
        progress.report(self.component, f"epoch {done}/{self.epochs}: {values} "
                                        f"({progress.duration(per_epoch)}/epoch, "
                                        f"ETA {progress.duration(per_epoch * (self.epochs - done))})")
