"""A small writer of TFLite flatbuffers (schema version 3, file identifier "TFL3") on the object API of
`ai_edge_litert.schema_py_generated`: no TensorFlow, no converter.

One Builder collects the tensors, buffers and builtin operators of a single subgraph. Every op method
appends one operator and returns its output as a Val (tensor index, shape, dtype); shapes are inferred
here because the file must declare them (delegates such as XNNPACK read the declared shapes), and the
export tests check them against the shapes LiteRT computes. Constants are buffers, aligned to 16 bytes.
"""
from collections import namedtuple

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"
ALIGN = 16                  # buffer data alignment, as the TFLite converter writes it
DTYPES = {np.dtype(np.float32): schema.TensorType.FLOAT32, np.dtype(np.int32): schema.TensorType.INT32}

Val = namedtuple("Val", "index shape dtype")        # one tensor of the subgraph


class AlignedBufferT(schema.BufferT):
    """BufferT whose bytes start on an ALIGN boundary (the generated Pack aligns uint8 data to 1)."""

    def Pack(self, builder):
        data = None
        if self.data is not None:
            payload = self.data.tobytes()
            builder.StartVector(1, len(payload), ALIGN)
            builder.head -= len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            data = builder.EndVector()
        schema.BufferStart(builder)
        if data is not None:
            schema.BufferAddData(builder, data)
        return schema.BufferEnd(builder)


def _options(opts):
    """An options object -> (its BuiltinOptions union tag, the object); FooOptionsT is tag FooOptions."""
    return (0, None) if opts is None else (getattr(schema.BuiltinOptions, type(opts).__name__[:-1]), opts)


class Builder:
    def __init__(self):
        self.tensors, self.operators = [], []
        self.buffers = [AlignedBufferT()]               # buffer 0: the empty buffer of every activation
        self.opcodes = {}                               # BuiltinOperator code -> index in operator_codes
        self.memo = {}                                  # constant key -> Val
        self.scope = "model"                            # prefix of activation names, set per tinyr1 node

    # ------------------------------------------------------------ tensors
    def _tensor(self, shape, dtype, name, buffer=0):
        t = schema.TensorT()
        t.shape, t.type, t.buffer, t.name, t.hasRank = list(shape), DTYPES[np.dtype(dtype)], buffer, name, True
        self.tensors.append(t)
        return Val(len(self.tensors) - 1, tuple(shape), np.dtype(dtype))

    def input(self, name, shape, dtype):
        return self._tensor(shape, dtype, name)

    def rename(self, val, name):
        """Give an operator's output a public name (the graph output "logits")."""
        self.tensors[val.index].name = name
        return val

    def const(self, value, dtype=np.float32, name=None):
        """A constant tensor (weights, tables, shapes, axes), stored once per distinct key or value."""
        a = np.ascontiguousarray(value, dtype=dtype)
        key = name or ("const", a.dtype.str, a.shape, a.tobytes())
        if key not in self.memo:
            buf = AlignedBufferT()
            buf.data = a.reshape(-1).view(np.uint8)
            self.buffers.append(buf)
            self.memo[key] = self._tensor(a.shape, a.dtype, name or f"const/{len(self.memo)}", len(self.buffers) - 1)
        return self.memo[key]

    def ints(self, *values):
        return self.const(list(values), np.int32)

    def scalar(self, value, dtype=np.float32):
        return self.const(value, dtype)

    # ------------------------------------------------------------ operators
    def op(self, code, inputs, outputs, opts=None):
        """Append builtin operator `code` (a BuiltinOperator name) reading inputs (Vals, None for an
        omitted optional input) -> outputs as Vals; outputs is [(shape, dtype)]."""
        code_id = getattr(schema.BuiltinOperator, code)
        idx = self.opcodes.setdefault(code_id, len(self.opcodes))
        outs = [self._tensor(shape, dtype, f"{self.scope}/{code.lower()}_{len(self.operators)}:{i}")
                for i, (shape, dtype) in enumerate(outputs)]
        o = schema.OperatorT()
        o.opcodeIndex, o.outputs = idx, [v.index for v in outs]
        o.inputs = [-1 if v is None else v.index for v in inputs]                # -1: an omitted optional input
        o.builtinOptionsType, o.builtinOptions = _options(opts)
        self.operators.append(o)
        return outs[0] if len(outs) == 1 else outs

    def _binary(self, code, a, b, opts):
        return self.op(code, [a, b], [(np.broadcast_shapes(a.shape, b.shape), a.dtype)], opts)

    def add(self, a, b):
        return self._binary("ADD", a, b, schema.AddOptionsT())

    def sub(self, a, b):
        return self._binary("SUB", a, b, schema.SubOptionsT())

    def mul(self, a, b):
        return self._binary("MUL", a, b, schema.MulOptionsT())

    def div(self, a, b):
        return self._binary("DIV", a, b, schema.DivOptionsT())

    def logistic(self, x):
        return self.op("LOGISTIC", [x], [(x.shape, x.dtype)])

    def rsqrt(self, x):
        return self.op("RSQRT", [x], [(x.shape, x.dtype)])

    def softmax(self, x):
        """Softmax over the last axis."""
        opts = schema.SoftmaxOptionsT()
        opts.beta = 1.0
        return self.op("SOFTMAX", [x], [(x.shape, x.dtype)], opts)

    def fully_connected(self, x, w):
        """x (N, in) @ w^T with w (out, in) a constant -> (N, out); no bias."""
        return self.op("FULLY_CONNECTED", [x, w, None], [((x.shape[0], w.shape[0]), x.dtype)],
                       schema.FullyConnectedOptionsT())

    def batch_matmul(self, a, b, adj_y=False):
        """a (..., M, K) @ b (..., K, N), or b^T when adj_y; batch axes broadcast -> (..., M, N)."""
        opts = schema.BatchMatMulOptionsT()
        opts.adjY = adj_y
        n = b.shape[-2] if adj_y else b.shape[-1]
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return self.op("BATCH_MATMUL", [a, b], [(batch + (a.shape[-2], n), a.dtype)], opts)

    def reshape(self, x, shape):
        assert np.prod(shape) == np.prod(x.shape), (x.shape, shape)
        opts = schema.ReshapeOptionsT()
        opts.newShape = list(shape)
        return self.op("RESHAPE", [x, self.ints(*shape)], [(tuple(shape), x.dtype)], opts)

    def transpose(self, x, perm):
        return self.op("TRANSPOSE", [x, self.ints(*perm)], [(tuple(x.shape[p] for p in perm), x.dtype)],
                       schema.TransposeOptionsT())

    def concat(self, vals, axis):
        opts = schema.ConcatenationOptionsT()
        opts.axis = axis
        shape = list(vals[0].shape)
        shape[axis] = sum(v.shape[axis] for v in vals)
        return self.op("CONCATENATION", vals, [(tuple(shape), vals[0].dtype)], opts)

    def sum(self, x, axis, keep_dims):
        opts = schema.ReducerOptionsT()
        opts.keepDims = keep_dims
        shape = list(x.shape)
        if keep_dims:
            shape[axis] = 1
        else:
            del shape[axis]
        return self.op("SUM", [x, self.ints(axis)], [(tuple(shape), x.dtype)], opts)

    def gather(self, params, indices):
        """Rows of params (N, ...) at int32 indices -> indices.shape + params.shape[1:]."""
        return self.op("GATHER", [params, indices], [(indices.shape + params.shape[1:], params.dtype)],
                       schema.GatherOptionsT())

    def top_k(self, x, k):
        """The k largest along the last axis, equal values in index order -> (values, int32 indices)."""
        shape = x.shape[:-1] + (k,)
        return self.op("TOPK_V2", [x, self.scalar(k, np.int32)], [(shape, x.dtype), (shape, np.int32)],
                       schema.TopKV2OptionsT())

    def one_hot(self, indices, depth, on=1.0, off=0.0):
        """int32 indices -> indices.shape + (depth,) float32 with `on` at each index, `off` elsewhere."""
        opts = schema.OneHotOptionsT()
        opts.axis = -1
        return self.op("ONE_HOT", [indices, self.scalar(depth, np.int32), self.scalar(on), self.scalar(off)],
                       [(indices.shape + (depth,), np.float32)], opts)

    # ------------------------------------------------------------ the file
    def finish(self, inputs, outputs, description):
        """-> the .tflite bytes: one subgraph, one "serving_default" signature."""
        codes = []
        for code_id in self.opcodes:                    # dict order is index order
            c = schema.OperatorCodeT()
            # deprecated_builtin_code is an int8: codes past 127 read the new field
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code_id, min(code_id, 127), 1
            codes.append(c)
        sub = schema.SubGraphT()
        sub.tensors, sub.operators, sub.name = self.tensors, self.operators, "main"
        sub.inputs, sub.outputs = [v.index for v in inputs.values()], [v.index for v in outputs.values()]
        sig = schema.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = "serving_default", 0
        sig.inputs, sig.outputs = ([_tensor_map(name, v) for name, v in vals.items()] for vals in (inputs, outputs))
        model = schema.ModelT()
        model.version, model.operatorCodes, model.subgraphs = SCHEMA_VERSION, codes, [sub]
        model.buffers, model.signatureDefs, model.description = self.buffers, [sig], description
        size = sum(len(b.data) for b in self.buffers if b.data is not None)
        fb = flatbuffers.Builder(size + (1 << 16))
        fb.Finish(model.Pack(fb), file_identifier=FILE_IDENTIFIER)
        return bytes(fb.Output())

    def operator_counts(self):
        """{BuiltinOperator name: number of operators}."""
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        by_index = {i: names[code] for code, i in self.opcodes.items()}
        counts = {}
        for o in self.operators:
            counts[by_index[o.opcodeIndex]] = counts.get(by_index[o.opcodeIndex], 0) + 1
        return dict(sorted(counts.items()))


def _tensor_map(name, val):
    m = schema.TensorMapT()
    m.name, m.tensorIndex = name, val.index
    return m
