"""tests/conftest.py's rule: under CI=true a skip is a failure naming what is missing; elsewhere it skips."""
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

MODULE_SKIP = "import pytest\npytest.importorskip('no_such_package_xyz')\n\n\ndef test_a():\n    pass\n"
TEST_SKIP = ("import pytest\n\n\ndef test_b():\n    pytest.skip('needs root and openssh-server')\n\n\n"
             "@pytest.mark.xfail(reason='known')\ndef test_x():\n    assert False\n\n\ndef test_c():\n    pass\n")


@pytest.mark.parametrize("ci", ["true", ""])
def test_skips_fail_under_ci_and_skip_elsewhere(tmp_path, ci):
    (tmp_path / "test_module_skip.py").write_text(MODULE_SKIP)
    (tmp_path / "test_test_skip.py").write_text(TEST_SKIP)
    env = dict(os.environ, CI=ci)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "conftest", "-c",
                        os.path.join(ROOT, "pytest.ini"), "--rootdir", str(tmp_path), "--continue-on-collection-errors", str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    if ci:
        assert r.returncode != 0, out
        assert "no_such_package_xyz" in out and "CI=true, and this test skipped: needs root and openssh-server" in out
        assert re.search(r"1 failed, 1 passed, 1 xfailed, 1 error", out), out[-2000:]
    else:
        assert r.returncode == 0, out
        assert re.search(r"1 passed, 2 skipped, 1 xfailed", out), out[-2000:]
