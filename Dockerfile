# The pipeline image: every step of the compiled Kubeflow spec runs in it, and so can Beam workers
# (Dataflow --sdk_container_image, Flink/Spark worker pools): the default base keeps Beam's /opt/apache/beam/boot.
# Build from the repository root:  docker build -t REGISTRY/inatvision:TAG .   (see kubeflow/README.md)
# BASE_IMAGE: any image with Python 3.10 as `python` and pip; `make image` builds one from Debian's packages
# (kubeflow/local_image.sh) where no registry can be reached.
ARG BASE_IMAGE=tensorflow/tfx:1.16.0

# The pinned set alone (`--target deps`): rebuilt only when the lock changes.
FROM ${BASE_IMAGE} AS deps
# Keras 2 in every process, Beam workers included.
ENV TF_USE_LEGACY_KERAS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /tmp/requirements.lock
# pip's cache stays out of the image (a build cache mount: a rebuild after a lock change downloads only what changed).
RUN --mount=type=cache,target=/root/.cache/pip python -m pip install -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

# Then the project as an installed package (not the source tree: the steps import `inatvision.*` from
# site-packages, whatever their working directory); the build fails if a step or an artifact type cannot import.
FROM deps
COPY . /tmp/inatvision-src
RUN python -m pip install --no-cache-dir --no-deps /tmp/inatvision-src && rm -rf /tmp/inatvision-src \
    && cd / && python -c "\
import importlib, inatvision; \
from tfx.utils.import_utils import import_class_by_path; \
import tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor; \
[import_class_by_path('inatvision.' + name) for name in inatvision._ARTIFACT_TYPES]; \
from inatvision.pipeline import pipeline; \
[importlib.import_module(path.rsplit('.', 1)[0]) for path in \
 (pipeline.TRANSFORM_MODULE, pipeline.VISION_RUN_FN, pipeline.GEO_RUN_FN)]; \
print('steps import: entrypoint, artifact types, components, module files')"
WORKDIR /pipeline
