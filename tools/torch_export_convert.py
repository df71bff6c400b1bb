"""Turns the records tools/torch_export.py captures into a ckpt-graph/1 forward graph.

Pure Python, no PyTorch: CI unit-tests it on a recorded sample
(tests/data/torch_export_sample.json, tests/python/test_torch_export.py). The records, format
"ckpt-torch-records/1", name tensors by integer id (one id per tensor object, so an in-place op has
the same id among its inputs and outputs) and list the ATen ops of one training forward in order.
The output follows docs/format.md: values and ops by name, in-place results as new versions
"t<id>.<n>" aliasing the version they overwrite, views aliasing their input.
"""

import json

RECORDS_FORMAT = "ckpt-torch-records/1"
_RANDOM_MARKERS = ("dropout", "bernoulli", "rand")
_VALUE_KINDS = {"input": "input", "buffer": "input", "param": "param", "activation": "activation"}


class RecordsError(ValueError):
    """A record set the converter cannot turn into a valid graph; the message names the op."""


def _is_batch_norm_update(op_name):
    # A training-mode batch norm updates its running statistics in place (an effect the planner
    # must not repeat); the inference and backward variants do not.
    if "batch_norm" not in op_name:
        return False
    return not any(word in op_name for word in ("no_training", "no_stats", "backward"))


def _op_flags(record, tensors):
    """random / side_effecting from the op's name and from what it writes in place."""
    name = record["op"]
    random = any(marker in name for marker in _RANDOM_MARKERS)
    # Written in place: an output that is also an input, or an input the op mutates without
    # returning it ("mutates", as a training batch norm does to its running statistics).
    written = [tid for tid in record["outputs"] if tid in record["inputs"]]
    written += record.get("mutates", [])
    writes_state = any(tensors[tid]["kind"] in ("input", "buffer", "param") for tid in written)
    return random, _is_batch_norm_update(name) or writes_state


def _check_ids(index, record, tensors):
    for field in ("inputs", "outputs", "saved", "mutates"):
        for tid in record.get(field, []):
            if tid not in tensors:
                raise RecordsError(f'ops[{index}] "{record["op"]}" (field "{field}"): '
                                   f"unknown tensor id {tid}; every id must be in \"tensors\"")
    views = record.get("views", [None] * len(record["outputs"]))
    if len(views) != len(record["outputs"]):
        raise RecordsError(f'ops[{index}] "{record["op"]}" (field "views"): {len(views)} entries '
                           f'for {len(record["outputs"])} outputs')
    return views


class _Converter:
    """Walks the ops once, naming each tensor's current version."""

    def __init__(self, records):
        self.tensors = {t["id"]: t for t in records["tensors"]}
        if len(self.tensors) != len(records["tensors"]):
            raise RecordsError('"tensors": duplicate tensor id')
        produced = {tid for op in records["ops"] for tid in op["outputs"]}
        self.produced = produced
        self.current = {}   # tensor id -> name of its newest version
        self.versions = {}  # tensor id -> number of in-place writes so far
        self.values = []
        for tensor in records["tensors"]:
            kind = _VALUE_KINDS.get(tensor["kind"])
            if kind is None:
                raise RecordsError(f'tensors id {tensor["id"]}: unknown kind "{tensor["kind"]}"')
            # A tensor no op produces (a constant made before the trace) is resident input.
            if kind == "activation" and tensor["id"] not in produced:
                kind = "input"
            if kind != "activation":
                self._add_value(tensor, f't{tensor["id"]}', kind)

    def _add_value(self, tensor, name, kind, alias_of=None):
        value = {"name": name, "bytes": int(tensor["bytes"]), "kind": kind,
                 "shape": list(tensor.get("shape", [])), "dtype": tensor.get("dtype", "")}
        if alias_of is not None:
            value["alias_of"] = alias_of
        if kind == "param" and not tensor.get("requires_grad", True):
            value["requires_grad"] = False
        self.values.append(value)
        self.current[tensor["id"]] = name
        return name

    def _output_name(self, index, record, position, view_of, input_names):
        tid = record["outputs"][position]
        tensor = self.tensors[tid]
        if tid in record["inputs"]:  # in place: a new version aliasing the one it overwrites
            self.versions[tid] = self.versions.get(tid, 0) + 1
            before = input_names[record["inputs"].index(tid)]
            return self._add_value(tensor, f"t{tid}.{self.versions[tid]}", "activation", before), True
        if tid in self.current:
            raise RecordsError(f'ops[{index}] "{record["op"]}" (field "outputs"): tensor id {tid} '
                               "was produced before; an op output must be a new tensor or an "
                               "input written in place")
        alias = input_names[view_of] if view_of is not None else None
        return self._add_value(tensor, f"t{tid}", "activation", alias), False

    def op(self, index, record):
        views = _check_ids(index, record, self.tensors)
        for tid in record["inputs"]:
            if tid not in self.current:
                raise RecordsError(f'ops[{index}] "{record["op"]}" (field "inputs"): tensor id '
                                   f"{tid} is read before any op produces it")
        input_names = [self.current[tid] for tid in record["inputs"]]
        outputs, in_place = [], False
        for position, view_of in enumerate(views):
            name, written = self._output_name(index, record, position, view_of, input_names)
            outputs.append(name)
            in_place = in_place or written
        saved, other_bytes = [], int(record.get("saved_other_bytes", 0))
        for tid in record.get("saved", []):
            # An output first: an in-place op's backward reads its result, not the dead input.
            if tid in record["outputs"]:
                name = outputs[record["outputs"].index(tid)]
            elif tid in record["inputs"]:
                name = input_names[record["inputs"].index(tid)]
            else:
                other_bytes += int(self.tensors[tid]["bytes"])
                continue
            if name not in saved:
                saved.append(name)
        random, side_effecting = _op_flags(record, self.tensors)
        bwd_time_us = float(record["bwd_us"])
        if len(outputs) == 1 and views[0] is not None and not in_place:
            # A view's backward is a view of the gradient (PyTorch allocates nothing); ckpt models
            # that pass-through with a zero backward time (docs/memory-model.md).
            bwd_time_us = 0.0
        op = {"name": f'{index}:{record["op"]}', "kind": record["op"], "inputs": input_names,
              "outputs": outputs, "fwd_time_us": float(record["fwd_us"]),
              "bwd_time_us": bwd_time_us}
        optional = [("saved", saved, []), ("saved_other_bytes", other_bytes, 0),
                    ("side_effecting", side_effecting, False), ("random", random, False),
                    ("in_place", in_place, False),
                    ("differentiable", bool(record.get("differentiable", True)), True),
                    ("attributes", dict(record.get("attributes", {})), {})]
        op.update({key: value for key, value, default in optional if value != default})
        return op


def convert_records(records):
    """Returns the ckpt-graph/1 forward graph (a dict) for a ckpt-torch-records/1 record set."""
    if records.get("format") != RECORDS_FORMAT:
        raise RecordsError(f'"format" is {records.get("format")!r}; expected "{RECORDS_FORMAT}"')
    converter = _Converter(records)
    # Ops without tensor outputs (asserts, prints) have nothing to keep or recompute.
    ops = [converter.op(i, op) for i, op in enumerate(records["ops"]) if op["outputs"]]
    if not ops:
        raise RecordsError('"ops": no op with a tensor output was recorded')
    loss = records.get("loss")
    if loss is not None and loss not in converter.produced:
        raise RecordsError(f'"loss": tensor id {loss} is not produced by any op')
    graph = {"format": "ckpt-graph/1", "form": "forward", "name": records.get("model", "model")}
    if loss is not None:
        graph["loss"] = converter.current[loss]
    graph["values"] = converter.values
    graph["ops"] = ops
    return graph


def dumps_graph(graph):
    """JSON text laid out like ckpt's own writer: top-level members and each entry on one line."""
    lines = ["{"]
    scalars = [key for key in graph if key not in ("values", "ops")]
    for key in scalars:
        lines.append(f"  {json.dumps(key)}: {json.dumps(graph[key])},")
    for key, last in (("values", False), ("ops", True)):
        entries = ",\n".join("    " + json.dumps(entry) for entry in graph[key])
        lines.append(f'  "{key}": [\n{entries}\n  ]' + ("" if last else ","))
    lines.append("}")
    return "\n".join(lines) + "\n"
