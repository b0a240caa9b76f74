"""A real, tiny ONNX text classifier laid out like a Hugging Face export (model.onnx, tokenizer.json,
config.json), for the classifier tests: no network, no model download, real onnxruntime and tokenizers.

The model sums one learned row per token (masked by attention) and adds a bias: each trigger word adds
``weight`` to the positive labels' logits, and the first label starts ``bias`` ahead (every label
starts at ``bias`` in a multi-label model). A word-level
tokenizer with [CLS]/[SEP] and a [PAD] of id 0 stands in for WordPiece.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")


def make_classifier(
    root: Path, triggers: Sequence[str], labels: Sequence[str] = ("BENIGN", "INJECTION"), *,
    positive: Sequence[int] = (1,), weight: float = 4.0, bias: float = 2.0, multi_label: bool = False,
    token_type_ids: bool = False, words: Sequence[str] = (),
) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    root.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(SPECIAL)}
    for w in (*triggers, *words):
        vocab.setdefault(w.lower(), len(vocab))
    table = np.zeros((len(vocab), len(labels)), dtype=np.float32)
    for t in triggers:
        for j in positive:
            table[vocab[t.lower()], j] = weight
    b = np.zeros(len(labels), dtype=np.float32)
    if multi_label:
        b[:] = bias  # each label on its own: all start at bias
    else:
        b[0] = bias  # the first (benign) label starts ahead

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    inputs = [ids, mask]
    if token_type_ids:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"]))
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", len(labels)])
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["rows"], axis=0),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", ["rows", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("Add", ["summed", "bias"], ["logits"]),
    ]
    inits = [numpy_helper.from_array(table, "table"), numpy_helper.from_array(b, "bias"),
             numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1")]
    graph = helper.make_graph(nodes, "tiny-classifier", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(root / "model.onnx"))

    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    tok.save(str(root / "tokenizer.json"))

    config = {"architectures": ["TinyForSequenceClassification"], "id2label": {str(i): n for i, n in enumerate(labels)},
              "label2id": {n: i for i, n in enumerate(labels)}}
    if multi_label:
        config["problem_type"] = "multi_label_classification"
    (root / "config.json").write_text(json.dumps(config))
    return root


def minilm_with_head(root: Path, weights: np.ndarray, bias: float, labels: Sequence[str] = ("BENIGN", "JAILBREAK")) -> Path:
    """all-MiniLM-L6-v2 (int8, from the ``semantic`` extra) with a logistic head on its pooled, normalised
    embedding, exported as a two-label classifier: logits ``[0, w.x + b]``, so softmax gives exactly the
    learned scorer's ``sigmoid(w.x + b)``. A real transformer through the classifier path."""
    import shutil

    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from llmrelay.embeddings import model_files

    model_path, tokenizer_path = model_files()
    root.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(model_path))
    g = model.graph
    hidden = g.output[0].name
    f32 = TensorProto.FLOAT
    g.initializer.extend([
        numpy_helper.from_array(weights.astype(np.float32).reshape(-1, 1), "head_w"),
        numpy_helper.from_array(np.array([bias], dtype=np.float32), "head_b"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "head_axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "head_axis2"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "head_one"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), "head_eps"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "head_zero"),
    ])
    g.node.extend([
        helper.make_node("Cast", ["attention_mask"], ["head_maskf"], to=f32),
        helper.make_node("Unsqueeze", ["head_maskf", "head_axis2"], ["head_mask3"]),
        helper.make_node("Mul", [hidden, "head_mask3"], ["head_masked"]),
        helper.make_node("ReduceSum", ["head_masked", "head_axis1"], ["head_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["head_maskf", "head_axis1"], ["head_count0"], keepdims=1),
        helper.make_node("Max", ["head_count0", "head_one"], ["head_count"]),
        helper.make_node("Div", ["head_sum", "head_count"], ["head_pooled"]),
        helper.make_node("ReduceL2", ["head_pooled"], ["head_norm0"], axes=[1], keepdims=1),
        helper.make_node("Max", ["head_norm0", "head_eps"], ["head_norm"]),
        helper.make_node("Div", ["head_pooled", "head_norm"], ["head_unit"]),
        helper.make_node("MatMul", ["head_unit", "head_w"], ["head_z0"]),
        helper.make_node("Add", ["head_z0", "head_b"], ["head_z"]),
        helper.make_node("Mul", ["head_z", "head_zero"], ["head_zeros"]),
        helper.make_node("Concat", ["head_zeros", "head_z"], ["logits"], axis=1),
    ])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("logits", f32, ["batch", 2]))
    onnx.save(model, str(root / "model.onnx"))
    shutil.copy(tokenizer_path, root / "tokenizer.json")
    (root / "config.json").write_text(json.dumps({"id2label": {str(i): n for i, n in enumerate(labels)}}))
    return root
