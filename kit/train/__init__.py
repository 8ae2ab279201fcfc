"""Training: locally with ultralytics (offline), or as a SageMaker training job.

Examples:
    >>> from kit.train import train_local
    >>> result = train_local("datasets/shelf/data.yaml", epochs=30, imgsz=320)
    >>> result.metrics["mAP50"], result.weights.name
    (0.94, 'best.pt')

Fine-tuning starts from the COCO-pretrained ``yolo11n.pt`` when this machine has it (or the
setting ``allow_downloads`` lets ultralytics fetch it), else from scratch; a registered model
or a local ``.pt`` serves as base offline.
"""

from kit.train.local import (
    PRETRAINED_BASE,
    SCRATCH_BASE,
    DownloadsDisabledError,
    hub_checkpoint_path,
    quiet_ultralytics,
    resolve_base,
    train_local,
)
from kit.train.result import TrainResult
from kit.train.sagemaker import (
    TrainingJobError,
    build_training_job_request,
    dataset_uri,
    download_model_artifact,
    package_training_source,
    start_training_job,
    training_image_uri,
    wait_for_training_job,
)

__all__ = [
    "PRETRAINED_BASE",
    "SCRATCH_BASE",
    "DownloadsDisabledError",
    "hub_checkpoint_path",
    "TrainResult",
    "TrainingJobError",
    "build_training_job_request",
    "dataset_uri",
    "download_model_artifact",
    "package_training_source",
    "quiet_ultralytics",
    "resolve_base",
    "start_training_job",
    "train_local",
    "training_image_uri",
    "wait_for_training_job",
]
