"""Load-time rewrites of an ONNX detector graph that ONNX Runtime's own optimizer does not make.

The file on disk is never changed: the rewritten graph goes to the session as bytes, so the
same export runs unmodified anywhere else (ultralytics, another runtime, the registry's checks).

The one rewrite today is the YOLOv8/11 head's distribution focal loss (DFL): ultralytics
exports it as ``Transpose(0, 2, 1, 3) -> Softmax(axis=1) -> Conv 1x1`` over a
``(batch, 4, reg_max, anchors)`` tensor. ONNX Runtime's CPU kernel computes a softmax over any
axis but the last by transposing around it, which made that one node about 5 % of the whole
model's time (yolov8n, 320x256, one thread). The same arithmetic with the softmax over the last
axis is ``Transpose(0, 1, 3, 2) -> Softmax(axis=-1) -> MatMul``: the same numbers in the same
memory order (``(b, 1, 4, A)`` and ``(b, 4, A, 1)`` are both ``b, 4, A`` element by element),
so the ``Reshape`` that follows is unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

MAX_REWRITE_BYTES = 1 << 30
"""Models larger than this are run as they are: a serialized ONNX graph must stay under 2 GiB,
and a detector of this kit is a few MB."""


def rewrite_for_onnxruntime(model_path: Path) -> bytes | None:
    """The model at ``model_path`` with its DFL softmax over the last axis, serialized; None
    when there is nothing to rewrite (or the graph is not one this rewrite knows), so the
    caller loads the file itself and ONNX Runtime reports any problem with it."""
    if model_path.stat().st_size > MAX_REWRITE_BYTES:
        return None
    import onnx

    try:
        model = onnx.load(str(model_path))
    except Exception as error:  # ONNX Runtime's own load says what is wrong with the file
        log.debug("%s: not rewritten, onnx could not read it: %s", model_path.name, error)
        return None
    rewritten = rewrite_dfl_softmax(model)
    if not rewritten:
        return None
    log.debug("%s: %d DFL softmax(es) moved to the last axis", model_path.name, rewritten)
    return model.SerializeToString()


def rewrite_dfl_softmax(model) -> int:
    """Rewrite every DFL ``Transpose -> Softmax(axis=1) -> Conv 1x1`` of ``model`` (an
    ``onnx.ModelProto``, changed in place) to a softmax over the last axis and a MatMul.

    Only the exact pattern is touched: a 4-D ``Transpose(0, 2, 1, 3)`` feeding only a
    ``Softmax`` over axis 1 (opset 13 or later, where that is one axis) feeding only a bias-free
    1x1 ``Conv`` with one output channel, whose output only ``Reshape`` nodes read, none of the
    three a graph output.

    Returns:
        How many were rewritten.
    """
    from onnx import helper, numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13:
        return 0
    graph = model.graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    producer = {name: node for node in graph.node for name in node.output}
    initializers = {i.name: i for i in graph.initializer}
    taken = set(initializers) | set(producer) | {i.name for i in graph.input}
    taken |= {node.name for node in graph.node}
    changed: set[str] = set()
    count = 0
    replaced: set[str] = set()
    for conv in list(graph.node):
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or len(conv.input) != 2:
            continue
        softmax = producer.get(conv.input[0])
        transpose = producer.get(softmax.input[0]) if softmax is not None else None
        weight = initializers.get(conv.input[1])
        if softmax is None or transpose is None or weight is None:
            continue
        if (
            softmax.op_type != "Softmax"
            or _attribute(softmax, "axis", -1) != 1
            or transpose.op_type != "Transpose"
            or list(_attribute(transpose, "perm", [])) != [0, 2, 1, 3]
            or any(_attribute(conv, key, default) != default for key, default in _CONV_1X1)
        ):
            continue
        kernel = numpy_helper.to_array(weight)
        if kernel.ndim != 4 or kernel.shape[0] != 1 or kernel.shape[2:] != (1, 1):
            continue
        if (
            not _only(consumers.get(transpose.output[0], []), softmax)
            or not _only(consumers.get(softmax.output[0], []), conv)
            or not consumers.get(conv.output[0])
            or not all(
                _reshape_of_order(n, conv.output[0], initializers)
                for n in consumers[conv.output[0]]
            )
            or {transpose.output[0], softmax.output[0], conv.output[0]} & outputs
        ):
            continue
        name = _unique(f"{conv.name or 'dfl'}_matmul_weight", taken)
        graph.initializer.append(numpy_helper.from_array(kernel.reshape(-1, 1), name))
        _set_attribute(transpose, helper.make_attribute("perm", [0, 1, 3, 2]))
        _set_attribute(softmax, helper.make_attribute("axis", -1))
        matmul = helper.make_node(
            "MatMul",
            [softmax.output[0], name],
            list(conv.output),
            name=_unique(f"{conv.name or 'dfl'}_matmul", taken),
        )
        index = list(graph.node).index(conv)
        graph.node.remove(conv)
        graph.node.insert(index, matmul)
        changed.update((transpose.output[0], softmax.output[0], conv.output[0]))
        replaced.add(weight.name)
        count += 1
    if changed:  # their recorded shapes are the old ones
        kept = [v for v in graph.value_info if v.name not in changed]
        del graph.value_info[:]
        graph.value_info.extend(kept)
        still_used = {name for node in graph.node for name in node.input}
        unused = [i for i in graph.initializer if i.name in replaced - still_used]
        for initializer in unused:
            graph.initializer.remove(initializer)
    return count


_CONV_1X1 = (
    ("group", 1),
    ("strides", [1, 1]),
    ("dilations", [1, 1]),
    ("pads", [0, 0, 0, 0]),
    ("auto_pad", b"NOTSET"),
)
"""Conv attributes (and their defaults) that make it a plain 1x1 dot product over channels."""


def _only(nodes: list, node) -> bool:
    """Whether ``node`` (the very message, not an equal one) is the one node in ``nodes``."""
    return len(nodes) == 1 and nodes[0] is node


def _reshape_of_order(node, tensor: str, initializers: dict) -> bool:
    """Whether ``node`` is a ``Reshape`` of ``tensor`` whose result depends only on the element
    order of ``tensor``, not on its shape: not one whose target is ``tensor`` itself, nor one
    with a constant target copying an input dimension after the first (a 0 without
    ``allowzero``), which would copy 1 before the rewrite and 4 after it."""
    from onnx import numpy_helper

    if node.op_type != "Reshape" or list(node.input[:1]) != [tensor] or tensor in node.input[1:]:
        return False
    target = initializers.get(node.input[1]) if len(node.input) > 1 else None
    if target is None or _attribute(node, "allowzero", 0):
        return True
    return not (numpy_helper.to_array(target)[1:] == 0).any()


def _attribute(node, name: str, default):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            value = helper.get_attribute_value(attribute)
            return list(value) if isinstance(value, list | tuple) else value
    return default


def _set_attribute(node, attribute) -> None:
    for index, existing in enumerate(node.attribute):
        if existing.name == attribute.name:
            node.attribute[index].CopyFrom(attribute)
            return
    node.attribute.append(attribute)


def _unique(name: str, taken: set[str]) -> str:
    candidate, suffix = name, 1
    while candidate in taken:
        suffix += 1
        candidate = f"{name}_{suffix}"
    taken.add(candidate)
    return candidate
