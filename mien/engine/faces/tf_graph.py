"""Read a frozen TensorFlow GraphDef (.pb) with the protobuf package alone.

TensorFlow is not installed here, so the few messages of a frozen graph
(tensorflow/core/framework: graph.proto, node_def.proto, attr_value.proto,
tensor.proto, tensor_shape.proto) are declared below as a descriptor, field
numbers as TensorFlow's. Enums (DataType) are read as plain ints and the
`attr` map as its wire form, a repeated key/value entry. Fields a frozen
inference graph does not use (functions, resource handles, variants) are left
out: protobuf skips unknown fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# tensorflow/core/framework/types.proto: DataType -> numpy
DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 5: np.int16, 6: np.int8,
          9: np.int64, 10: np.bool_, 19: np.float16}

# message -> [(field name, number, type, repeated, message type name)]
_T = {"double": 1, "float": 2, "int64": 3, "int32": 5, "bool": 8, "string": 9, "message": 11, "bytes": 12}
_MESSAGES = {
    "TensorShapeProto.Dim": [("size", 1, "int64", False, None), ("name", 2, "string", False, None)],
    "TensorShapeProto": [("dim", 2, "message", True, "TensorShapeProto.Dim"), ("unknown_rank", 3, "bool", False, None)],
    "TensorProto": [("dtype", 1, "int32", False, None), ("tensor_shape", 2, "message", False, "TensorShapeProto"),
                    ("version_number", 3, "int32", False, None), ("tensor_content", 4, "bytes", False, None),
                    ("float_val", 5, "float", True, None), ("double_val", 6, "double", True, None),
                    ("int_val", 7, "int32", True, None), ("string_val", 8, "bytes", True, None),
                    ("int64_val", 10, "int64", True, None), ("bool_val", 11, "bool", True, None),
                    ("half_val", 13, "int32", True, None)],
    "AttrValue.ListValue": [("s", 2, "bytes", True, None), ("i", 3, "int64", True, None),
                            ("f", 4, "float", True, None), ("b", 5, "bool", True, None),
                            ("type", 6, "int32", True, None), ("shape", 7, "message", True, "TensorShapeProto"),
                            ("tensor", 8, "message", True, "TensorProto")],
    "AttrValue": [("list", 1, "message", False, "AttrValue.ListValue"), ("s", 2, "bytes", False, None),
                  ("i", 3, "int64", False, None), ("f", 4, "float", False, None), ("b", 5, "bool", False, None),
                  ("type", 6, "int32", False, None), ("shape", 7, "message", False, "TensorShapeProto"),
                  ("tensor", 8, "message", False, "TensorProto"), ("placeholder", 9, "string", False, None)],
    "NodeDef.AttrEntry": [("key", 1, "string", False, None), ("value", 2, "message", False, "AttrValue")],
    "NodeDef": [("name", 1, "string", False, None), ("op", 2, "string", False, None),
                ("input", 3, "string", True, None), ("device", 4, "string", False, None),
                ("attr", 5, "message", True, "NodeDef.AttrEntry")],
    "GraphDef": [("node", 1, "message", True, "NodeDef"), ("version", 3, "int32", False, None)],
}
_PACKAGE = "mien_tf"


@lru_cache(maxsize=1)
def _graphdef_class():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fd = descriptor_pb2.FileDescriptorProto(name="mien_tf_graph.proto", package=_PACKAGE, syntax="proto3")
    for full, fields in _MESSAGES.items():
        msg = fd.message_type.add(name=full.replace(".", "_"))
        if full == "AttrValue":
            msg.oneof_decl.add(name="value")   # every AttrValue field is one case of `value`
        for name, number, kind, repeated, ref in fields:
            f = msg.field.add(name=name, number=number, type=_T[kind],
                              label=3 if repeated else 1)   # LABEL_REPEATED / LABEL_OPTIONAL
            if full == "AttrValue":
                f.oneof_index = 0
            if ref:
                f.type_name = f".{_PACKAGE}.{ref.replace('.', '_')}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.GraphDef"))


def tensor_array(t) -> np.ndarray:
    """A TensorProto as a numpy array (tensor_content, or the typed *_val list, broadcast)."""
    if t.dtype not in DTYPES:
        raise ValueError(f"tensor of TensorFlow dtype {t.dtype} is not supported")
    dtype = np.dtype(DTYPES[t.dtype])
    shape = tuple(int(d.size) for d in t.tensor_shape.dim)
    if t.tensor_content:
        return np.frombuffer(t.tensor_content, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    if dtype == np.float16:
        values = np.array(t.half_val, np.uint16).view(np.float16)
    else:
        field = {np.float32: "float_val", np.float64: "double_val", np.int64: "int64_val",
                 np.bool_: "bool_val"}.get(dtype.type, "int_val")
        values = np.array(getattr(t, field), dtype)
    count = int(np.prod(shape)) if shape else 1
    if values.size == count:
        return values.reshape(shape)
    if values.size == 1 or values.size == 0:   # TensorFlow stores a splat as one value
        return np.full(shape, values[0] if values.size else 0, dtype)
    raise ValueError(f"tensor of shape {shape} holds {values.size} values")


def _attr_value(a):
    kind = a.WhichOneof("value")
    if kind == "tensor":
        return tensor_array(a.tensor)
    if kind == "list":
        lv = a.list
        for name in ("i", "f", "s", "b", "type"):
            values = list(getattr(lv, name))
            if values:
                return [v.decode("latin-1") if isinstance(v, bytes) else v for v in values]
        return [[int(d.size) for d in s.dim] for s in lv.shape]
    if kind == "shape":
        return [int(d.size) for d in a.shape.dim]
    if kind == "s":
        return a.s.decode("latin-1")
    return getattr(a, kind) if kind else None


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str]          # "name", "name:1", "^control" (control inputs are dropped)
    attrs: dict


def read_graph(data: bytes) -> dict[str, Node]:
    """name -> Node of a serialized GraphDef; raises ValueError when it is not one."""
    from google.protobuf.message import DecodeError

    graph = _graphdef_class()()
    try:
        graph.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(f"not a TensorFlow GraphDef: {exc}") from None
    if not len(graph.node):
        raise ValueError("not a TensorFlow GraphDef: no nodes")
    nodes = {}
    for n in graph.node:
        attrs = {e.key: _attr_value(e.value) for e in n.attr}
        nodes[n.name] = Node(n.name, n.op, [i for i in n.input if not i.startswith("^")], attrs)
    return nodes
