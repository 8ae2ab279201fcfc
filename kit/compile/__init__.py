"""Export trained weights (ONNX, OpenVINO), check them against PyTorch, time them on the edge
runtime, compile with SageMaker Neo.

Examples:
    >>> from kit.compile import export_onnx, export_openvino, parity_check
    >>> onnx = export_onnx(result.weights)
    >>> parity_check(result.weights, onnx, "datasets/shelf/data.yaml", strict=True).passed
    True
"""

from kit.compile.export import ExportError, export_onnx, export_openvino, nncf_available
from kit.compile.neo import (
    CompilationJobError,
    build_compilation_job_request,
    download_compiled_model,
    neo_target_devices,
    package_for_neo,
    start_compilation_job,
    wait_for_compilation_job,
)
from kit.compile.parity import (
    ImageAgreement,
    ParityError,
    ParityReport,
    box_iou,
    compare_boxes,
    match_boxes,
    parity_check,
)
from kit.compile.quantize import (
    INT8_FORMATS,
    MAX_INT8_MAP50_DROP,
    Int8Model,
    Int8Refused,
    int8_verdict,
    quantize_int8,
)
from kit.compile.speed import ExportSpeed, measure_export_speed

__all__ = [
    "INT8_FORMATS",
    "MAX_INT8_MAP50_DROP",
    "Int8Model",
    "Int8Refused",
    "int8_verdict",
    "quantize_int8",
    "CompilationJobError",
    "ExportError",
    "ExportSpeed",
    "ImageAgreement",
    "ParityError",
    "ParityReport",
    "box_iou",
    "compare_boxes",
    "build_compilation_job_request",
    "download_compiled_model",
    "export_onnx",
    "export_openvino",
    "match_boxes",
    "measure_export_speed",
    "nncf_available",
    "neo_target_devices",
    "package_for_neo",
    "parity_check",
    "start_compilation_job",
    "wait_for_compilation_job",
]
