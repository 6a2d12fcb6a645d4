"""The measurement scripts behind the README's figures (examples/measure/) run and report what they claim."""
import os
import re
import subprocess
import sys

from conftest import ROOT
from runtime.bench import ONE_THREAD

ENV = dict(os.environ, **ONE_THREAD, PYTHONPATH=ROOT)


def run(script, *args):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "measure", script), *args], cwd=ROOT,
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_speculative_drafts_keep_the_text(student_file):
    out = run("speculative.py", student_file)
    same, n, accepted, drafted = map(lambda s: int(s.replace(",", "")),
                                     re.search(r"identical text (\d+)/(\d+); drafts accepted ([\d,]+)/([\d,]+)",
                                               out).groups())
    assert same == n == 200 and 0 < accepted <= drafted


def test_int8_parity_reports_the_issue_3_bounds(student_ckpt_dir):
    out = run("int8_parity.py", student_ckpt_dir)
    pre, dec = map(float, re.search(r"prefill ([\d.e+-]+), step decode ([\d.e+-]+)", out).groups())
    agree, total = (int(s.replace(",", "")) for s in re.search(r"identical on ([\d,]+) of ([\d,]+)", out).groups())
    assert pre <= 1e-4 and dec <= 1e-4 and agree >= 0.99 * total > 0
    assert float(re.search(r"= ([\d.]+) bytes per parameter", out).group(1)) <= 1.15


def test_kiosk_latency_covers_every_config(student_file):
    out = run("kiosk_latency.py", student_file)
    names = re.findall(r"^(\S+): (\d+) presses, press-to-first-character median ([\d.]+) ms", out, re.M)
    assert [n for n, *_ in names] == ["pi5-ssd1306", "pi4-sh1106", "pizero2w-lcd1602"]
    assert all(int(p) > 0 and float(ms) > 0 for _, p, ms in names)


def test_failures_lists_each_family(student_ckpt_dir):
    out = run("sampled_accuracy.py", "--failures", "--families", "fib,sort", student_ckpt_dir)
    assert re.search(r"^fib: \d+ distinct held-out questions, \d+ answered wrong", out, re.M)
    assert re.search(r"^sort: \d+ distinct held-out questions, \d+ answered wrong", out, re.M)
