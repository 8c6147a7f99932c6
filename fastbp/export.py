"""ONNX export: a trained network as an ONNX graph that onnxruntime (or any ONNX runtime)
serves without Python, fastbp or Numba.

``to_onnx(model, path=None)`` takes a ``Sequential`` or a fitted ``MLPClassifier`` /
``MLPRegressor``. The graph reads float32 rows ``input`` of shape (N, n_features) and gives
what the model's prediction method gives: ``output`` (``Sequential.predict``: the last
layer's outputs, logits for a ``from_logits`` loss), ``probabilities`` (the classifier's
``predict_proba``, two columns for a single sigmoid output) or ``predictions`` (the
regressor's ``predict``, 1-D for one target). Per op of the model's layout: Dense ->
MatMul + Add, BatchNormalization -> BatchNormalization (inference), Dropout -> nothing, the
activation -> Relu, LeakyRelu, Elu, Sigmoid, Tanh, Softmax or Exp.

Needs the ``onnx`` package (``pip install "fastbp[onnx]"``, which brings onnxruntime too).
"""

import numpy as np

from . import codes

#: ONNX opset the graphs are written for (onnxruntime 1.14 and later run it)
OPSET = 17


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install \"fastbp[onnx]\" "
                          "(onnx, and onnxruntime to run the exported model)") from None
    return onnx, helper, numpy_helper


class _Graph:
    """Nodes and initializers, with fresh names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers, self.count = [], [], 0

    def name(self, stem):
        self.count += 1
        return f"{stem}_{self.count}"

    def constant(self, stem, array):
        name = self.name(stem)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, stem, **attributes):
        out = self.name(stem)
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attributes))
        return out


def _activation(graph, x, code, alpha):
    if code == codes.LINEAR:
        return x
    if code == codes.RELU:
        return graph.node("Relu", [x], "relu")
    if code == codes.LEAKY_RELU:
        return graph.node("LeakyRelu", [x], "leaky_relu", alpha=float(alpha))
    if code == codes.ELU:
        return graph.node("Elu", [x], "elu", alpha=float(alpha))
    if code == codes.SIGMOID:
        return graph.node("Sigmoid", [x], "sigmoid")
    if code == codes.TANH:
        return graph.node("Tanh", [x], "tanh")
    if code == codes.SOFTMAX:
        return graph.node("Softmax", [x], "softmax", axis=-1)
    if code == codes.EXP:
        return graph.node("Exp", [x], "exp")
    raise ValueError(f"activation code {code} has no ONNX export")


def network_graph(graph, x, layout, params, aux):
    """Append the network of ``layout`` (weights ``params``, statistics ``aux``) to ``graph``
    reading tensor ``x``; returns the name of its output tensor."""
    for row, frow in zip(layout.ops, layout.opf):
        kind, n_in, n_out, p = (int(row[codes.OC_KIND]), int(row[codes.OC_IN]),
                                int(row[codes.OC_OUT]), int(row[codes.OC_PARAM]))
        if kind == codes.OP_DENSE:
            W = params[p:p + n_in * n_out].reshape(n_in, n_out)
            b = params[p + n_in * n_out:p + (n_in + 1) * n_out]
            x = graph.node("MatMul", [x, graph.constant("W", W)], "matmul")
            x = graph.node("Add", [x, graph.constant("b", b)], "dense")
        elif kind == codes.OP_BATCHNORM:
            a = int(row[codes.OC_AUX])
            x = graph.node("BatchNormalization",
                           [x, graph.constant("gamma", params[p:p + n_out]),
                            graph.constant("beta", params[p + n_out:p + 2 * n_out]),
                            graph.constant("mean", aux[a:a + n_out]),
                            graph.constant("var", aux[a + n_out:a + 2 * n_out])],
                           "batchnorm", epsilon=float(frow[codes.OF_EPS]))
        else:  # dropout: nothing at inference
            continue
        x = _activation(graph, x, int(row[codes.OC_ACT]), frow[codes.OF_ALPHA])
    return x


def to_onnx(model, path=None):
    """The ONNX model of ``model`` (a built ``Sequential``, or a fitted ``MLPClassifier`` or
    ``MLPRegressor``), written to ``path`` when given. Returns the ``onnx.ModelProto``."""
    onnx, helper, numpy_helper = _onnx()
    from .model import Sequential
    from .sklearn import MLPClassifier, MLPRegressor
    from ._validation import describe
    graph = _Graph(helper, numpy_helper)
    if isinstance(model, Sequential):
        model._require_built("to_onnx")
        layout, params, aux, n_features = model.layout, model.params, model.aux, \
            model.n_features
        out_name, kind = "output", "sequential"
    elif isinstance(model, (MLPClassifier, MLPRegressor)):
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(model)
        model._sync()
        layout, params, aux, n_features = model._layout, model._params, model._aux, \
            model.n_features_in_
        classifier = isinstance(model, MLPClassifier)
        out_name = "probabilities" if classifier else "predictions"
        kind = "classifier" if classifier else "regressor"
    else:
        raise TypeError(f"to_onnx exports a fastbp.Sequential, MLPClassifier or MLPRegressor; "
                        f"received {describe(model)}")
    x = network_graph(graph, "input", layout, np.asarray(params, np.float32),
                      np.asarray(aux, np.float32))
    k = layout.n_outputs
    if kind == "classifier" and k == 1 and model.out_activation_ == "logistic":
        one = graph.constant("one", np.ones((1, 1), np.float32))
        x = graph.node("Concat", [graph.node("Sub", [one, x], "negative"), x], "two_columns",
                       axis=1)
        k = 2
    elif kind == "regressor" and k == 1:
        x = graph.node("Reshape", [x, graph.constant("shape", np.array([-1], np.int64))],
                       "flat")
    graph.nodes.append(helper.make_node("Identity", [x], [out_name]))
    shape = ["N"] if kind == "regressor" and layout.n_outputs == 1 else ["N", k]
    onnx_graph = helper.make_graph(
        graph.nodes, f"fastbp_{kind}",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, shape)],
        graph.initializers)
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fastbp")
    proto.ir_version = min(proto.ir_version, 8)  # readable by older runtimes too
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, str(path))
    return proto


#: opset of a table's graph: ``Equal`` on strings (one-hot of the categorical columns) is 19's
TABLE_OPSET = 19


def tabular_to_onnx(model, path=None):
    """The ONNX model of a fitted ``fastbp.tabular.TabularModel``, preprocessing included:
    one input per column of the table, shape (N, 1), float32 for numeric columns (NaN where
    missing) and string for the others (``""`` where missing); the output ``probabilities``
    (N, n_classes) in ``classes_`` order, or ``predictions`` (N,) in the target's units.
    Numeric columns are standardised in float32 (fastbp does it in float64 then rounds: the
    outputs agree to about 1e-6)."""
    onnx, helper, numpy_helper = _onnx()
    model._check_fitted()
    graph = _Graph(helper, numpy_helper)
    inputs, features = [], []
    zero = graph.constant("zero", np.zeros((1, 1), np.float32))
    for c in model.preprocessor.columns:
        name = c["name"]
        if c["kind"] == "numeric":
            inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["N", 1]))
            absent = graph.node("IsNaN", [name], "absent")
            scaled = graph.node("Div", [graph.node("Sub", [name, graph.constant(
                "mean", np.full((1, 1), c["mean"], np.float32))], "centred"),
                graph.constant("std", np.full((1, 1), c["std"], np.float32))], "scaled")
            features.append(graph.node("Where", [absent, zero, scaled], "numeric"))
        else:
            inputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.STRING, ["N", 1]))
            for value in c["categories"]:
                same = graph.node("Equal", [name, graph.constant(
                    "category", np.array([[str(value)]], dtype=object))], "same")
                features.append(graph.node("Cast", [same], "onehot", to=onnx.TensorProto.FLOAT))
            absent = graph.node("Equal", [name, graph.constant(
                "empty", np.array([[""]], dtype=object))], "absent")
        if c["missing"]:
            features.append(graph.node("Cast", [absent], "indicator", to=onnx.TensorProto.FLOAT))
    x = graph.node("Concat", features, "features", axis=1)
    net = model.network
    x = network_graph(graph, x, net.layout, net.params, net.aux)
    if model.task_ == "classification":
        out_name, shape = "probabilities", ["N", len(model.classes_)]
    else:
        mean, std = model.target_scale
        x = graph.node("Add", [graph.node("Mul", [x, graph.constant(
            "target_std", np.array([std], np.float32))], "unscaled"),
            graph.constant("target_mean", np.array([mean], np.float32))], "value")
        x = graph.node("Reshape", [x, graph.constant("shape", np.array([-1], np.int64))],
                       "flat")
        out_name, shape = "predictions", ["N"]
    graph.nodes.append(helper.make_node("Identity", [x], [out_name]))
    onnx_graph = helper.make_graph(
        graph.nodes, "fastbp_table", inputs,
        [helper.make_tensor_value_info(out_name, onnx.TensorProto.FLOAT, shape)],
        graph.initializers)
    proto = helper.make_model(onnx_graph, opset_imports=[helper.make_opsetid("", TABLE_OPSET)],
                              producer_name="fastbp")
    proto.ir_version = min(proto.ir_version, 9)
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, str(path))
    return proto
