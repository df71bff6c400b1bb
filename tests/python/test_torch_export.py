"""Unit tests of tools/torch_export_convert.py on a recorded sample (no PyTorch needed).

tests/data/torch_export_sample.json holds the records tools/torch_export.py captures for a tiny
Linear -> ReLU(inplace) -> Dropout -> BatchNorm1d -> sum model: a view (t), an in-place op
(relu_), a random op with a saved mask, a buffer write (num_batches_tracked += 1), an op with no
output, and a training-mode batch norm. When CKPT_PLAN_EXE names a built ckpt-plan, the converted
graph is also planned by the real binary. Run: python3 -m unittest discover tests/python
"""

import copy
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import torch_export_convert as convert  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "torch_export_sample.json"


def load_sample():
    with open(SAMPLE, encoding="utf-8") as f:
        return json.load(f)


class ConvertRecordsTest(unittest.TestCase):
    def setUp(self):
        self.graph = convert.convert_records(load_sample())
        self.values = {v["name"]: v for v in self.graph["values"]}
        self.ops = {op["kind"]: op for op in self.graph["ops"]}

    def test_top_level(self):
        self.assertEqual(self.graph["format"], "ckpt-graph/1")
        self.assertEqual(self.graph["form"], "forward")
        self.assertEqual(self.graph["name"], "tiny_bn_mlp")
        self.assertEqual(self.graph["loss"], "t14")

    def test_value_kinds(self):
        self.assertEqual(self.values["t0"]["kind"], "input")
        self.assertEqual(self.values["t1"]["kind"], "param")
        self.assertEqual(self.values["t10"]["kind"], "input")  # a buffer is resident input
        self.assertFalse(self.values["t9"]["requires_grad"])  # a frozen parameter
        self.assertNotIn("requires_grad", self.values["t8"])
        self.assertEqual(self.values["t6"]["dtype"], "bool")

    def test_view_aliases_its_input_and_passes_the_gradient_through(self):
        self.assertEqual(self.values["t3"]["alias_of"], "t1")
        self.assertEqual(self.ops["aten.t.default"]["bwd_time_us"], 0.0)
        self.assertNotIn("in_place", self.ops["aten.t.default"])

    def test_in_place_makes_a_new_version(self):
        relu = self.ops["aten.relu_.default"]
        self.assertEqual(relu["inputs"], ["t4"])
        self.assertEqual(relu["outputs"], ["t4.1"])
        self.assertTrue(relu["in_place"])
        self.assertEqual(relu["saved"], ["t4.1"])  # the result, not the overwritten input
        self.assertEqual(self.values["t4.1"]["alias_of"], "t4")
        # Later readers see the newest version.
        self.assertEqual(self.ops["aten.native_dropout.default"]["inputs"], ["t4.1"])

    def test_random_and_saved_mask(self):
        dropout = self.ops["aten.native_dropout.default"]
        self.assertTrue(dropout["random"])
        self.assertEqual(dropout["saved"], ["t6"])
        self.assertEqual(dropout["attributes"], {"p": 0.1})

    def test_side_effects(self):
        counter = self.ops["aten.add_.Tensor"]
        self.assertTrue(counter["side_effecting"])
        self.assertFalse(counter["differentiable"])
        self.assertTrue(self.ops["aten.native_batch_norm.default"]["side_effecting"])
        self.assertNotIn("side_effecting", self.ops["aten.addmm.default"])

    def test_ops_without_outputs_are_dropped_and_names_keep_the_record_index(self):
        self.assertNotIn("aten._assert_async.default", self.ops)
        self.assertEqual(self.ops["aten.sum.default"]["name"], "7:aten.sum.default")

    def test_saved_tensor_outside_the_op_counts_as_other_bytes(self):
        records = load_sample()
        records["ops"][7]["saved"] = [0]  # sum's backward keeping the graph input x (128 bytes)
        graph = convert.convert_records(records)
        self.assertEqual(graph["ops"][-1]["saved_other_bytes"], 128)
        self.assertNotIn("saved", graph["ops"][-1])

    def test_errors_name_the_op(self):
        cases = [
            (lambda r: r["ops"][1]["inputs"].append(99), 'ops[1] "aten.addmm.default"'),
            (lambda r: r["ops"][7]["outputs"].__setitem__(0, 4), "was produced before"),
            (lambda r: r["ops"][3]["views"].pop(), '(field "views")'),
            (lambda r: r.__setitem__("format", "other"), '"format"'),
            (lambda r: r.__setitem__("loss", 1), '"loss"'),
        ]
        for mutate, expected in cases:
            records = copy.deepcopy(load_sample())
            mutate(records)
            with self.assertRaises(convert.RecordsError) as caught:
                convert.convert_records(records)
            self.assertIn(expected, str(caught.exception))

    def test_written_text_round_trips(self):
        text = convert.dumps_graph(self.graph)
        self.assertEqual(json.loads(text), self.graph)
        self.assertIn('\n    {"name": "t4.1"', text)  # one value per line

    @unittest.skipUnless(os.environ.get("CKPT_PLAN_EXE") and
                         os.path.exists(os.environ.get("CKPT_PLAN_EXE", "")),
                         "CKPT_PLAN_EXE does not name a built ckpt-plan")
    def test_ckpt_plan_reads_the_converted_graph(self):
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "tiny_bn_mlp.json")
            with open(path, "w", encoding="utf-8") as f:
                f.write(convert.dumps_graph(self.graph))
            run = subprocess.run([os.environ["CKPT_PLAN_EXE"], path, "--format", "json"],
                                 capture_output=True, text=True, check=False)
        self.assertEqual(run.returncode, 0, run.stderr)
        report = json.loads(run.stdout)
        self.assertTrue(report["feasible"])
        self.assertEqual(report["forward_nodes"], 7)


if __name__ == "__main__":
    unittest.main()
