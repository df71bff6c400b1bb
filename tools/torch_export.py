#!/usr/bin/env python3
"""Exports a PyTorch model's training step as a ckpt-graph/1 forward graph for ckpt-plan.

Capture (needs PyTorch; run it on the GPU machine): one training forward runs under a
TorchDispatchMode that records every ATen op with its tensors (one id per tensor object, so an
in-place op shows the same id among its inputs and outputs), which outputs are views of an input
(same storage), which inputs it mutates (schema alias info), and, from the autograd node the op
created, the tensors its backward saved (the node's `_saved_*` fields, matched to the op's inputs
and outputs by storage, offset, shape and stride; anything else counts as saved_other_bytes). Then
every distinct op signature is replayed alone on fresh copies of its inputs and timed with CUDA
events: forward, and backward through torch.autograd.grad; the median of --reps runs is kept.
The records ("ckpt-torch-records/1", --records) are converted by torch_export_convert.py, the
pure-Python half that CI tests without PyTorch. docs/pytorch.md walks through it.

  python3 tools/torch_export.py --model torchvision:resnet18 --batch 32 --out resnet18.json
  build/tools/ckpt-plan resnet18.json --budget 50%
"""

import argparse
import importlib
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import torch_export_convert  # noqa: E402

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_flatten, tree_unflatten  # noqa: E402


def _storage_key(tensor):
    """What identifies a saved tensor with an op's input or output: same memory, same view."""
    return (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape),
            tuple(tensor.stride()), tensor.dtype)


def _saved_tensors(grad_fn):
    """Tensors an autograd node keeps for its backward (its `_saved_*` fields)."""
    saved = []
    for attribute in dir(grad_fn):
        if not attribute.startswith("_saved_"):
            continue
        try:
            value = getattr(grad_fn, attribute)
        except RuntimeError:  # freed, or modified in place since
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, torch.Tensor):
                saved.append(item)
    return saved


class _Recorder(TorchDispatchMode):
    """Records one forward's ATen ops; keeps every tensor alive so object ids stay unique."""

    def __init__(self, model):
        super().__init__()
        self.kinds = {id(p): "param" for p in model.parameters()}
        self.kinds.update({id(b): "buffer" for b in model.buffers()})
        self.ids = {}        # id(tensor) -> tensor id
        self.alive = []      # strong references: an object id is never reused during capture
        self.tensors = []    # tensor records
        self.ops = []        # op records
        self.replays = {}    # signature -> (func, args, kwargs) copies for timing
        self.signatures = []
        self._pending = None  # (op record, outputs): the autograd node is set after dispatch

    def tensor_id(self, tensor, produced):
        key = id(tensor)
        if key not in self.ids:
            self.ids[key] = len(self.tensors)
            self.alive.append(tensor)
            kind = self.kinds.get(key, "activation" if produced else "input")
            self.tensors.append({
                "id": self.ids[key], "shape": list(tensor.shape),
                "dtype": str(tensor.dtype).replace("torch.", ""),
                "bytes": tensor.numel() * tensor.element_size(), "kind": kind,
                "requires_grad": bool(tensor.requires_grad)})
        return self.ids[key]

    def finish_pending(self):
        """Reads what the previous op's autograd node saved, now that autograd has made it."""
        if self._pending is None:
            return
        record, inputs, outputs = self._pending
        self._pending = None
        grad_fn = next((t.grad_fn for t in outputs if t.grad_fn is not None), None)
        record["differentiable"] = grad_fn is not None
        if grad_fn is None:
            return
        known = {}
        for tensor in inputs + outputs:
            known.setdefault(_storage_key(tensor), self.ids[id(tensor)])
        for tensor in _saved_tensors(grad_fn):
            tid = known.get(_storage_key(tensor))
            if tid is None:
                record["saved_other_bytes"] += tensor.numel() * tensor.element_size()
            elif tid not in record["saved"]:
                record["saved"].append(tid)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.finish_pending()
        flat_args, _ = tree_flatten((args, kwargs))
        inputs = [a for a in flat_args if isinstance(a, torch.Tensor)]
        input_ids = [self.tensor_id(t, produced=False) for t in inputs]
        signature = self._remember_replay(func, args, kwargs)
        result = func(*args, **kwargs)
        flat_out, _ = tree_flatten(result)
        outputs = [t for t in flat_out if isinstance(t, torch.Tensor)]
        record = {
            "op": str(func), "inputs": input_ids,
            "outputs": [self.tensor_id(t, produced=True) for t in outputs],
            "views": [self._view_of(t, inputs) for t in outputs],
            "mutates": self._mutated(func, args, kwargs, outputs),
            "saved": [], "saved_other_bytes": 0, "differentiable": False,
            "fwd_us": 0.0, "bwd_us": 0.0, "attributes": self._attributes(func, args)}
        self.ops.append(record)
        self.signatures.append(signature)
        self._pending = (record, inputs, outputs)
        return result

    @staticmethod
    def _view_of(output, inputs):
        pointer = output.untyped_storage().data_ptr()
        for position, tensor in enumerate(inputs):
            if tensor is output:
                return position  # in place; the converter makes it a new version
            if pointer != 0 and tensor.untyped_storage().data_ptr() == pointer:
                return position
        return None

    def _mutated(self, func, args, kwargs, outputs):
        """Inputs the schema marks as written that the op does not return (running statistics)."""
        mutated = []
        for position, argument in enumerate(func._schema.arguments):
            if argument.alias_info is None or not argument.alias_info.is_write:
                continue
            value = args[position] if position < len(args) else kwargs.get(argument.name)
            if isinstance(value, torch.Tensor) and all(value is not o for o in outputs):
                mutated.append(self.ids[id(value)])
        return mutated

    @staticmethod
    def _attributes(func, args):
        # What ckpt's executor would need to re-run the op; planners ignore attributes.
        if "dropout" in str(func) and len(args) > 1 and isinstance(args[1], float):
            return {"p": args[1]}
        return {}

    def _remember_replay(self, func, args, kwargs):
        flat, spec = tree_flatten((args, kwargs))
        signature = repr((str(func), [
            (tuple(a.shape), a.dtype, tuple(a.stride()), a.requires_grad)
            if isinstance(a, torch.Tensor) else a for a in flat]))
        if signature not in self.replays:
            copies = [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in flat]
            grads = [isinstance(a, torch.Tensor) and a.requires_grad for a in flat]
            self.replays[signature] = (func, spec, copies, grads)
        return signature


def _timer(device):
    """Returns time_us(callable) for the device: CUDA events around the call, or a host clock."""
    if device.type == "cuda":
        def time_us(call):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) * 1000.0
        return time_us

    def time_us(call):
        start = time.perf_counter()
        call()
        return (time.perf_counter() - start) * 1e6
    return time_us


def _time_replay(replay, reps, time_us):
    """Median forward and backward microseconds of one op signature, run alone."""
    func, spec, copies, grads = replay
    mutable = func._schema.is_mutable
    leaves = [c.clone().requires_grad_(g) if g else c for c, g in zip(copies, grads)]
    # A leaf that requires grad cannot be written in place: give in-place ops a non-leaf copy.
    flat = [l.clone() if mutable and g else l for l, g in zip(leaves, grads)]
    args, kwargs = tree_unflatten(flat, spec)
    with torch.no_grad():
        func(*args, **kwargs)  # warm-up
        fwd = statistics.median(time_us(lambda: func(*args, **kwargs)) for _ in range(reps))
    wanted = [l for l, g in zip(leaves, grads) if g]
    outputs = [o for o in tree_flatten(func(*args, **kwargs))[0]
               if isinstance(o, torch.Tensor) and o.requires_grad and o.is_floating_point()]
    if not wanted or not outputs:
        return fwd, 0.0
    seeds = [torch.ones_like(o) for o in outputs]

    def backward():
        torch.autograd.grad(outputs, wanted, seeds, retain_graph=True, allow_unused=True)
    backward()  # warm-up
    return fwd, statistics.median(time_us(backward) for _ in range(reps))


def _loss_id(recorder, loss):
    """The loss tensor's id: the object the last op returned, or failing that (a wrapper made
    above the dispatcher) the recorded output with the same storage and view."""
    if id(loss) in recorder.ids:
        return recorder.ids[id(loss)]
    key = _storage_key(loss)
    for tensor in reversed(recorder.alive):
        if _storage_key(tensor) == key:
            return recorder.ids[id(tensor)]
    raise ValueError("the loss is not the output of any recorded op")


def capture(model, inputs, loss_fn, reps=20, name="model"):
    """Runs one training forward of model(*inputs), loss_fn(output) -> scalar, and returns the
    ckpt-torch-records/1 records with every op timed."""
    recorder = _Recorder(model)
    model.train()
    with recorder:
        loss = loss_fn(model(*inputs))
    recorder.finish_pending()
    device = loss.device
    time_us = _timer(device)
    timed = {}
    for record, signature in zip(recorder.ops, recorder.signatures):
        if signature not in timed:
            timed[signature] = _time_replay(recorder.replays[signature], reps, time_us)
        record["fwd_us"], record["bwd_us"] = timed[signature]
    return {"format": torch_export_convert.RECORDS_FORMAT, "model": name,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "torch": torch.__version__, "loss": _loss_id(recorder, loss),
            "tensors": recorder.tensors, "ops": recorder.ops}


def _tiny_model(batch, device):
    """The model the recorded sample (tests/data/torch_export_sample.json) was written after."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(inplace=True),
                                torch.nn.Dropout(0.1), torch.nn.BatchNorm1d(16)).to(device)
    model[3].bias.requires_grad_(False)
    return model, (torch.randn(batch, 8, device=device),), lambda out: out.sum()


def _torchvision_model(name, batch, device):
    import torchvision  # noqa: PLC0415 (only this model source needs it)
    model = getattr(torchvision.models, name)(num_classes=1000).to(device)
    images = torch.randn(batch, 3, 224, 224, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    return model, (images,), lambda out: torch.nn.functional.cross_entropy(out, labels)


def load_model(spec, batch, device):
    """tiny | torchvision:NAME | package.module:factory (factory(batch, device) returns
    (model, inputs tuple, loss_fn))."""
    if spec == "tiny":
        return _tiny_model(batch, device)
    source, _, name = spec.partition(":")
    if source == "torchvision":
        return _torchvision_model(name, batch, device)
    return getattr(importlib.import_module(source), name)(batch, device)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny", help=load_model.__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--reps", type=int, default=20, help="timed runs per op (median)")
    parser.add_argument("--out", required=True, help="the ckpt-graph/1 file to write")
    parser.add_argument("--records", help="also write the raw records here")
    options = parser.parse_args(argv)
    model, inputs, loss_fn = load_model(options.model, options.batch, torch.device(options.device))
    records = capture(model, inputs, loss_fn, options.reps, name=options.model.split(":")[-1])
    if options.records:
        pathlib.Path(options.records).write_text(json.dumps(records, indent=1) + "\n")
    graph = torch_export_convert.convert_records(records)
    pathlib.Path(options.out).write_text(torch_export_convert.dumps_graph(graph))
    print(f"{options.out}: {len(graph['ops'])} ops, {len(graph['values'])} values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
