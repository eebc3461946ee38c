"""A small ONNX interpreter in numpy, for checking tools/export.py's ONNX files where onnxruntime is
not installed: it runs the operators torch.onnx.export emits for MobileNet (Conv with groups, Relu,
AveragePool, Pad, Gemm, BatchNormalization, and the shape arithmetic around Reshape), nothing more;
any other operator is refused by name. Needs the onnx package only to read the file.
"""
import numpy as np
import onnx
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _windows(x, kh, kw, sh, sw):
    """(n, c, oh, ow, kh, kw) strided view of the (already padded) x (n, c, h, w)."""
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(x, (n, c, oh, ow, kh, kw),
                                           (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]), writeable=False)


def _pad2d(x, pads):
    top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _conv(x, w, b, a):
    g = a.get("group", 1)
    kh, kw = w.shape[2], w.shape[3]
    sh, sw = a.get("strides", [1, 1])
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise NotImplementedError("Conv with dilation")
    xp = _pad2d(x, a.get("pads", [0, 0, 0, 0]))
    win = _windows(xp, kh, kw, sh, sw)
    n, c, oh, ow = win.shape[:4]
    m = w.shape[0]
    win = win.reshape(n, g, c // g, oh, ow, kh, kw)
    wg = w.reshape(g, m // g, c // g, kh, kw)
    y = np.einsum("ngcyxij,gmcij->ngmyx", win, wg, optimize=True).reshape(n, m, oh, ow)
    if b is not None:
        y = y + b[None, :, None, None]
    return y.astype(np.float32)


def run(path, images):
    """The graph's first output for the input array `images`."""
    model = onnx.load(path)
    g = model.graph
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    env[g.input[0].name] = images
    for node in g.node:
        a = _attrs(node)
        x = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            y = numpy_helper.to_array(a["value"])
        elif op == "Conv":
            y = _conv(x[0], x[1], x[2] if len(x) > 2 else None, a)
        elif op == "Relu":
            y = np.maximum(x[0], 0)
        elif op == "BatchNormalization":
            scale, bias, mean, var = x[1:5]
            inv = scale / np.sqrt(var + a.get("epsilon", 1e-5))
            y = (x[0] - mean[None, :, None, None]) * inv[None, :, None, None] + bias[None, :, None, None]
        elif op == "AveragePool":
            kh, kw = a["kernel_shape"]
            sh, sw = a.get("strides", [1, 1])
            if any(a.get("pads", [0, 0, 0, 0])):
                raise NotImplementedError("AveragePool with padding")
            y = _windows(x[0], kh, kw, sh, sw).mean(axis=(4, 5))
        elif op == "Pad":
            pads = x[1].tolist() if len(x) > 1 and x[1] is not None else a["pads"]
            if a.get("mode", b"constant") not in (b"constant", "constant"):
                raise NotImplementedError("Pad other than constant")
            r = len(pads) // 2
            y = np.pad(x[0], [(pads[i], pads[i + r]) for i in range(r)])
        elif op == "Gemm":
            A = x[0].T if a.get("transA", 0) else x[0]
            B = x[1].T if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
        elif op == "MatMul":
            y = x[0] @ x[1]
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Flatten":
            axis = a.get("axis", 1)
            y = x[0].reshape(int(np.prod(x[0].shape[:axis])), -1)
        elif op == "Shape":
            y = np.array(x[0].shape, dtype=np.int64)
        elif op == "Gather":
            y = np.take(x[0], x[1], axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            axes = x[1].tolist() if len(x) > 1 else a["axes"]
            y = x[0]
            for ax in sorted(axes):
                y = np.expand_dims(y, ax)
        elif op == "Concat":
            y = np.concatenate([np.atleast_1d(t) for t in x], axis=a["axis"])
        elif op == "Reshape":
            shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(x[1].tolist())]
            y = x[0].reshape(shape)
        else:
            raise NotImplementedError(f"ONNX operator {op} (this checker knows only MobileNet's)")
        env[node.output[0]] = np.asarray(y)
    return env[g.output[0].name].astype(np.float32)
