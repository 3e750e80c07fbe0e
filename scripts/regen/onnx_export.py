"""Shared by the model scripts: builds, checks and writes an ONNX file reproducibly."""
import hashlib

from onnx import checker, helper, numpy_helper


def save_model(nodes, name, inputs, outputs, weights, out, producer_name):
    """Writes the graph (opset 17, IR 8, deterministic bytes) to `out`; returns (bytes, 0x blake2-256).

    `weights` maps initializer names to numpy arrays, in the order they are stored.
    """
    graph = helper.make_graph(
        nodes,
        name,
        inputs,
        outputs,
        initializer=[numpy_helper.from_array(array, key) for key, array in weights.items()],
    )
    model = helper.make_model(
        graph,
        producer_name=producer_name,
        producer_version="1",
        opset_imports=[helper.make_opsetid("", 17)],
        ir_version=8,
    )
    checker.check_model(model, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString(deterministic=True)
    out.write_bytes(data)
    return data, "0x" + hashlib.blake2b(data, digest_size=32).hexdigest()
