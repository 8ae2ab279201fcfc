"""The ONNX Runtime backend runs the YOLO head's DFL softmax over the last axis (a load-time
rewrite of the graph, the file untouched): the same outputs as the export run as it is."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_app.detectors import load_detector
from edge_app.detectors.onnx_graph import rewrite_dfl_softmax, rewrite_for_onnxruntime
from kit.demo_models import DEMO_DIR
from kit.synthetic import scenario_frames

DEMO_ONNX = {name: DEMO_DIR / name / "model.onnx" for name in ("shelf", "fish", "ppe")}


def session(model: str | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def dfl_graph(
    *,
    opset: int = 18,
    axis: int = 1,
    perm: tuple[int, ...] = (0, 2, 1, 3),
    bias: bool = False,
    after: str = "Reshape",
    softmax_is_output: bool = False,
    target: tuple[int, ...] = (1, 4, 7),
) -> onnx.ModelProto:
    """ultralytics' DFL: (1, 4, 16, A) -> Transpose -> Softmax -> Conv 1x1 (weights 0..15) ->
    Reshape (1, 4, A), with the variations a test asks for."""
    anchors = 7
    weight = np.arange(16, dtype=np.float32).reshape(1, 16, 1, 1)
    initializers = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(np.array(target, dtype=np.int64), "shape"),
        numpy_helper.from_array(np.array([0.5], dtype=np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], name="transpose", perm=list(perm)),
        helper.make_node("Softmax", ["t"], ["s"], name="softmax", axis=axis),
        helper.make_node("Conv", ["s", "w", "b"] if bias else ["s", "w"], ["c"], name="conv"),
    ]
    if after == "Reshape":
        nodes.append(helper.make_node("Reshape", ["c", "shape"], ["y"], name="reshape"))
        out_shape = [1, 4, anchors]
    else:
        nodes.append(helper.make_node(after, ["c"], ["y"], name="after"))
        out_shape = None
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)]
    if softmax_is_output:
        outputs.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes,
        "dfl",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, anchors])],
        outputs,
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def test_the_rewritten_dfl_computes_what_the_original_does():
    model = dfl_graph()
    x = np.random.default_rng(0).normal(0, 3, (1, 4, 16, 7)).astype(np.float32)
    (expected,) = session(model.SerializeToString()).run(None, {"x": x})
    assert rewrite_dfl_softmax(model) == 1
    ops = {node.name or node.op_type: node for node in model.graph.node}
    assert [n.op_type for n in model.graph.node] == ["Transpose", "Softmax", "MatMul", "Reshape"]
    assert list(ops["transpose"].attribute[0].ints) == [0, 1, 3, 2]
    assert ops["softmax"].attribute[0].i == -1
    assert "w" not in {i.name for i in model.graph.initializer}  # the Conv's weight went with it
    (rewritten,) = session(model.SerializeToString()).run(None, {"x": x})
    np.testing.assert_allclose(rewritten, expected, rtol=1e-6, atol=1e-6)
    # the expected value of a distribution over 0..15: within the bins
    assert rewritten.min() >= 0 and rewritten.max() <= 15


@pytest.mark.parametrize(
    "variation",
    [
        {"opset": 11},  # before opset 13 Softmax(axis=1) normalises over every axis after 1
        {"axis": 2},
        {"perm": (0, 1, 3, 2)},
        {"bias": True},
        {"after": "Relu"},  # a consumer that cares about the output's shape
        {"softmax_is_output": True},
        # a 0 copies the input's dimension: 1 of (1, 1, 4, A) before, 4 of (1, 4, A, 1) after
        {"target": (1, 0, -1)},
    ],
    ids=str,
)
def test_anything_but_the_exact_pattern_is_left_alone(variation):
    model = dfl_graph(**variation)
    before = model.SerializeToString()
    assert rewrite_dfl_softmax(model) == 0
    assert model.SerializeToString() == before


@pytest.mark.parametrize("name", sorted(DEMO_ONNX))
def test_the_demo_models_give_the_same_outputs_rewritten(name):
    """GIVEN a shipped demo model (exported by ultralytics), WHEN its graph is rewritten for
    ONNX Runtime, THEN the file is untouched and the raw outputs on real scenes equal the
    original graph's."""
    path = DEMO_ONNX[name]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    rewritten = rewrite_for_onnxruntime(path)
    assert rewritten is not None, f"{name}: the DFL pattern was not found"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    original, faster = session(str(path)), session(rewritten)
    softmaxes = [n for n in onnx.load_from_string(rewritten).graph.node if n.op_type == "Softmax"]
    assert [helper.get_attribute_value(a) for n in softmaxes for a in n.attribute] == [-1]
    detector = load_detector(path, backend="onnxruntime", rewrite_graph=False)
    scenario = {"shelf": "bottles_removed", "fish": "fish_arriving", "ppe": "helmet_off"}[name]
    for frame, _ in itertools.islice(scenario_frames(scenario, seconds=1, fps=4, seed=1), 4):
        tensor, _ = detector.preprocess(frame)
        (expected,) = original.run(None, {original.get_inputs()[0].name: tensor})
        (got,) = faster.run(None, {faster.get_inputs()[0].name: tensor})
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_the_backend_rewrites_unless_told_not_to_and_detects_the_same():
    path = DEMO_ONNX["shelf"]
    rewritten = load_detector(path, backend="onnxruntime")
    plain = load_detector(path, backend="onnxruntime", rewrite_graph=False)
    assert rewritten.backend.graph_rewritten and not plain.backend.graph_rewritten
    boxes = 0
    for frame, _ in itertools.islice(scenario_frames("bottles_removed", seconds=1, seed=2), 5):
        ours, reference = rewritten.detect(frame), plain.detect(frame)
        np.testing.assert_array_equal(ours.class_id, reference.class_id)
        np.testing.assert_allclose(ours.xyxy, reference.xyxy, atol=1e-3)
        np.testing.assert_allclose(ours.confidence, reference.confidence, atol=1e-5)
        boxes += len(ours)
    assert boxes >= 10, f"only {boxes} boxes: the comparison would prove little"


def test_a_file_onnx_cannot_read_is_left_to_onnx_runtime(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x0f\xff\xff not a model")
    assert rewrite_for_onnxruntime(path) is None
    with pytest.raises(Exception, match="(?i)protobuf|load|invalid"):
        load_detector(path, backend="onnxruntime")
