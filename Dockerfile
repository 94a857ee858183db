# The pipeline image: every step of the compiled Kubeflow spec runs in it, and so can Beam workers
# (Dataflow --sdk_container_image, Flink/Spark worker pools): the base keeps Beam's /opt/apache/beam/boot entrypoint.
# Build from the repository root:  docker build -t REGISTRY/inatvision:TAG .   (see kubeflow/README.md)
FROM tensorflow/tfx:1.16.0

# Keras 2 in every process, Beam workers included (docs: stack.md).
ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/pipeline

WORKDIR /pipeline

# The pinned set first: this layer is rebuilt only when the lock changes.
COPY requirements.lock .
RUN python -m pip install -r requirements.lock

# Then the project, without resolving anything again (PYTHONPATH also serves the source to Beam workers,
# whatever their working directory); fail the build if the steps cannot import.
COPY . .
RUN python -m pip install --no-deps . \
    && python -c "import pipeline.pipeline, components.trainer.run, components.transform.preprocessing"
