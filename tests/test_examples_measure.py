"""The measurement scripts behind the README's figures (examples/measure/) run and report what they claim."""
import os
import re
import subprocess
import sys

from conftest import ROOT
from runtime.speed import ONE_THREAD

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
    pre = float(re.search(r"prefill ([\d.e+-]+), step decode", out).group(1))
    off, positions = (int(s.replace(",", "")) for s in re.search(r"beyond 1e-4 at (\d+) of ([\d,]+) positions", out).groups())
    agree, total = (int(s.replace(",", "")) for s in re.search(r"identical on ([\d,]+) of ([\d,]+)", out).groups())
    assert pre <= 1e-4 and off <= 0.01 * positions and agree >= 0.99 * total > 0
    assert float(re.search(r"= ([\d.]+) bytes per parameter", out).group(1)) <= 1.15


def test_kiosk_latency_covers_every_config(student_file):
    from runtime.kiosk.config import load_config
    out = run("kiosk_latency.py", student_file)
    rows = re.findall(r"^(\S+): (\d+) presses, press-to-first-character median ([\d.]+) ms, max ([\d.]+) ms; "
                      r"(\d+)/(\d+) verified right; median ([\d,]+) tokens/s; (\d+) frames", out, re.M)
    assert [r[0] for r in rows] == ["pi5-ssd1306", "pi4-sh1106", "pizero2w-lcd1602"]
    for name, presses, median, worst, right, answered, tps, frames in rows:
        buttons = len(load_config(os.path.join(ROOT, "firmware_configs", f"{name}.yaml")).buttons)
        assert int(presses) == int(answered) == 5 * buttons, name          # every press timed and answered
        assert 0 < float(median) <= float(worst) and int(frames) > 0 and int(tps.replace(",", "")) > 0
    # the README's count of verified answers ("55 of 60") is what the greedy student answers
    claim = re.search(r"(\d+) of (\d+) answers are\s+verified right", open(os.path.join(ROOT, "README.md")).read())
    assert (sum(int(r[4]) for r in rows), sum(int(r[5]) for r in rows)) == tuple(map(int, claim.groups()))


def test_failures_lists_each_family(student_ckpt_dir):
    out = run("sampled_accuracy.py", "--failures", "--families", "fib,sort", student_ckpt_dir)
    assert re.search(r"^fib: \d+ distinct held-out questions, \d+ answered wrong", out, re.M)
    assert re.search(r"^sort: \d+ distinct held-out questions, \d+ answered wrong", out, re.M)


def test_sft_step_times_the_three_settings():
    out = run("sft_step.py", "--steps", "1")
    rows = re.findall(r"^  (equal pieces|cheapest cuts|two threads) +([\d.]+) s a step +([\d.]+)x$", out, re.M)
    assert [r[0] for r in rows] == ["equal pieces", "cheapest cuts", "two threads"], out
    assert all(float(s) > 0 for _, s, _ in rows) and rows[0][2] == "1.00"


def test_division_facts_reach_every_step_and_back_the_readme():
    """Every long-division step a/d (a in 0..10d-1) occurs in 20,000 speed traces for d up to 10, and the
    README's counts (`55/8` a step of 3, `40/8` of 201) are what the script prints."""
    out = run("division_facts.py")
    distinct = {int(d): int(k) for d, k in re.findall(r"^/(\d+): (\d+) distinct steps", out, re.M)}
    assert all(distinct[d] == 10 * d for d in range(1, 11)), distinct
    printed = dict(re.findall(r"^(\d+/\d+): (\d+)$", out, re.M))
    readme = open(os.path.join(ROOT, "README.md")).read()
    claims = re.findall(r"`(\d+/\d+)` (?:is a step of|of) (\d+)", readme)
    assert [step for step, _ in claims] == ["55/8", "23/4", "41/8", "40/8"], claims
    for step, k in claims:
        assert printed.get(step) == k, (step, k, printed)


def test_fib_drills_count_what_they_print(student_ckpt_dir):
    """fib_drills.py asks what its options say (drills, near starts within --near steps, far starts) and
    its totals add up its per-question lines."""
    out = run("fib_drills.py", student_ckpt_dir, "--drills", "4", "--near", "8", "--far", "1")
    groups = re.findall(r"^(\S.*): (\d+)/(\d+) right$", out, re.M)
    assert [int(n) for _, _, n in groups] == [4, 3, 1], out          # near: fib(41) from fib(33), 41..42 from 34
    lines = re.findall(r"^  fib\((\d+)\) if fib\(0\)=(\d+), fib\(1\)=(\d+): (right|wrong)", out, re.M)
    assert len(lines) == 8 and [int(k) for k, *_ in lines[4:]] == [8, 7, 8, 20], lines
    assert sum(r == "right" for *_, r in lines) == sum(int(k) for _, k, _ in groups)


def test_sort_failures_split_every_question_once(student_ckpt_dir):
    """sort_failures.py counts each question once, in its kind of list, and its totals add up; --show prints
    every wrong sort (the bundled student misses some of 13-16 numbers) with its trace as written."""
    out = run("sort_failures.py", student_ckpt_dir, "--n", "12", "--show", "12")    # 13-16 numbers: some wrong
    kinds = re.findall(r"^(single digits|two-digit): (\d+)/(\d+) right; (.*)$", out, re.M)
    assert [k for k, *_ in kinds] == ["single digits", "two-digit"] and sum(int(n) for _, _, n, _ in kinds) == 12, out
    for _, right, n, parts in kinds:
        counts = [(p.rsplit(" ", 1)[0], int(p.rsplit(" ", 1)[1])) for p in parts.split(", ") if p]
        assert sum(v for _, v in counts) == int(n) and sum(v for k, v in counts if k.endswith("right")) == int(right)
    assert re.search(r"^all: (\d+)/12 right$", out, re.M).group(1) == str(sum(int(r) for _, r, _, _ in kinds))
    assert 0 <= int(re.search(r"^answers with fewer numbers than the list: (\d+)/12$", out, re.M).group(1)) <= 12
    wrong = 12 - int(re.search(r"^all: (\d+)/12 right$", out, re.M).group(1))      # --show: each wrong one, as written
    assert wrong and len(re.findall(r"^Sort .*\n  trained: .*\n  written: .*<answer>", out, re.M)) == wrong, out
