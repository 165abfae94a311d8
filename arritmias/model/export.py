"""The network outside Keras: written as an ONNX graph at training time, run with OpenVINO wherever it is served.

Why not Keras's own exporter (``model.export(format="onnx")``, tf2onnx underneath): it writes each Conv1D as
TensorFlow lowers it (ExpandDims, a 2-D convolution in channels-last layout, Squeeze) with batch normalisation as
separate Mul/Add after the Squeeze, where neither ONNX Runtime nor OpenVINO fuses it. The graph written here is
the same arithmetic in the layout the runtimes are built for: one Transpose at the input, then 1-D Conv,
BatchNormalization, Relu and MaxPool in channels-first order. Measured once on this 2-core machine while choosing
(default network, batches of 4,096 beats, 2 threads): Keras's export 40,300 beats/s in ONNX Runtime 1.32 and
38,700 in OpenVINO 2026.4; this graph 44,500-47,000 in ONNX Runtime and 74,600-77,000 in OpenVINO; P(V) within
2e-7 of Keras in each. So the served network runs this graph in OpenVINO (which reads ONNX itself), and Keras
only where OpenVINO is absent; ``benchmarks/bench_network_size.py`` keeps measuring OpenVINO against Keras.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

OPSET = 17


def export_onnx(model, path: Path, win: int) -> Path:
    """Write the Keras network ``model`` (inputs ``beat`` (n, win, channels) and ``rr`` (n, k), output the class
    probabilities (n, c)) to ``path`` as ONNX. Supports the layers :func:`arritmias.model.build_model` uses; anything else is refused
    with the layer's name, never exported approximately."""
    import onnx
    from keras import layers
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights, names, rank = [], [], {}, {}

    def const(name: str, value) -> str:
        weights.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def emit(op: str, inputs: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def source(layer) -> list[str]:
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        return [names[id(t)] for t in inputs]

    graph_inputs = []
    for layer in model.layers:
        kind, name = type(layer).__name__, layer.name
        if isinstance(layer, layers.InputLayer):
            shape = layer.output.shape
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", *shape[1:]]))
            out, rank[name] = name, len(shape)
            if len(shape) == 3:  # (n, time, channels) -> (n, channels, time): the runtimes' native conv layout
                out = emit("Transpose", [name], f"{name}_ncw", perm=[0, 2, 1])
                rank[out] = 3
            names[id(layer.output)] = out
            continue
        x = source(layer)
        in_rank = rank[x[0]]
        if isinstance(layer, (layers.Conv1D, layers.SeparableConv1D)):
            if layer.padding not in ("same", "valid") or layer.dilation_rate[0] != 1:
                raise ValueError(f"layer {name}: padding {layer.padding!r} / dilation not exportable")
            pad = {"auto_pad": "SAME_UPPER"} if layer.padding == "same" else {}  # TF's "same": extra pad at the end
            w = [np.asarray(v) for v in layer.get_weights()]
            if isinstance(layer, layers.SeparableConv1D):
                depth, point = w[0], w[1]  # (k, c_in, m), (1, c_in*m, c_out)
                k, c_in, m = depth.shape
                # ONNX groups output channel c*m + j from input channel c, as Keras's depthwise kernel does.
                x = [emit("Conv", [x[0], const(f"{name}_dw", depth.transpose(1, 2, 0).reshape(c_in * m, 1, k))],
                          f"{name}_depthwise", group=c_in, kernel_shape=[k], strides=list(layer.strides), **pad)]
                kernel, bias, conv_attrs = point[0].T[:, :, None], (w[2] if layer.use_bias else None), {}
            else:
                kernel, bias = w[0].transpose(2, 1, 0), (w[1] if layer.use_bias else None)  # (c_out, c_in, k)
                conv_attrs = {"kernel_shape": [kernel.shape[2]], "strides": list(layer.strides), **pad}
            ins = [x[0], const(f"{name}_w", kernel)] + ([const(f"{name}_b", bias)] if bias is not None else [])
            out = emit("Conv", ins, name, **conv_attrs)
            out = _activation(emit, layer, out)
        elif isinstance(layer, layers.BatchNormalization):
            if layer.axis not in (-1, in_rank - 1):  # channels last in Keras = axis 1 of the ONNX tensors
                raise ValueError(f"layer {name}: normalisation axis {layer.axis} not exportable")
            gamma, beta, mean, var = [np.asarray(v) for v in layer.get_weights()]
            out = emit("BatchNormalization", [x[0]] + [const(f"{name}_{p}", v) for p, v in
                                                      (("g", gamma), ("b", beta), ("m", mean), ("v", var))],
                       name, epsilon=float(layer.epsilon))
        elif isinstance(layer, layers.Activation):
            out = _activation(emit, layer, x[0])
        elif isinstance(layer, layers.MaxPooling1D):
            if layer.padding != "valid":
                raise ValueError(f"layer {name}: padding {layer.padding!r} not exportable")
            out = emit("MaxPool", x, name, kernel_shape=list(layer.pool_size), strides=list(layer.strides))
        elif isinstance(layer, (layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D)):
            op = "ReduceMax" if isinstance(layer, layers.GlobalMaxPooling1D) else "ReduceMean"
            out = emit(op, x, name, axes=[2], keepdims=0)  # over time, channels-first
        elif isinstance(layer, layers.Concatenate):
            ranks = {rank[t] for t in x}
            if ranks != {2} or layer.axis not in (-1, 1):
                raise ValueError(f"layer {name}: only feature-vector concatenation is exportable")
            out = emit("Concat", x, name, axis=1)
        elif isinstance(layer, layers.Dense):
            kernel, bias = [np.asarray(v) for v in layer.get_weights()]
            out = emit("Gemm", [x[0], const(f"{name}_w", kernel), const(f"{name}_b", bias)], name)
            out = _activation(emit, layer, out)
        elif isinstance(layer, layers.Dropout):  # inference: identity
            out = x[0]
        else:
            raise ValueError(f"layer {name} ({kind}) is not exportable to ONNX")
        rank[out] = 2 if isinstance(layer, (layers.GlobalMaxPooling1D, layers.GlobalAveragePooling1D,
                                            layers.Dense, layers.Concatenate)) else in_rank
        names[id(layer.output)] = out

    output = model.outputs[0]
    final = emit("Identity", [names[id(output)]], "probabilities")
    graph = helper.make_graph(nodes, model.name, graph_inputs,
                              [helper.make_tensor_value_info(final, TensorProto.FLOAT, ["n", output.shape[-1]])],
                              weights)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="arritmias")
    onnx.checker.check_model(proto, full_check=True)
    Path(path).write_bytes(proto.SerializeToString())
    return Path(path)


def _activation(emit, layer, x: str) -> str:
    """The layer's activation as an ONNX node after ``x`` (none for linear)."""
    act = layer.get_config().get("activation", "linear")
    if act in ("linear", None):
        return x
    ops = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax"}
    if act not in ops:
        raise ValueError(f"layer {layer.name}: activation {act!r} not exportable")
    attrs = {"axis": -1} if act == "softmax" else {}
    return emit(ops[act], [x], f"{layer.name}_{act}", **attrs)


def compiled_network(path: Path, threads: int | None = None, precision: str = "f32"):
    """``(beat (n, win, 3), rr (n, 4)) -> probabilities (n, k)`` running the ONNX file ``path`` in OpenVINO, or None when
    OpenVINO is not installed. Threads: up to the cores the process may use, at most 4 (the network is small; more only
    wait); batch actors pass 1. ``precision`` "f32" (what the Detector uses) or "bf16" (measured by
    ``benchmarks/bench_network_size.py``: ~1.8x faster on CPUs with bfloat16 units, P(V) moved by ~1e-3)."""
    try:
        import openvino as ov
    except ImportError:
        return None

    # The cores this process may run on (`taskset`, a container's cpuset), not the machine's: more threads than
    # cores only take turns.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    config = {"INFERENCE_NUM_THREADS": int(threads or max(1, min(cores, 4))),
              "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request, output = compiled.create_infer_request(), compiled.outputs[0]
    lock = threading.Lock()  # one infer request: callers on several threads take turns

    def run(beat: np.ndarray, rr: np.ndarray) -> np.ndarray:
        with lock:  # the answer lives in the request's buffer until the next call: copy it out
            return request.infer({"beat": beat, "rr": rr}, share_inputs=True)[output].copy()

    return run
