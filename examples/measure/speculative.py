"""README "Interop and speed": MTP self-speculative decoding on 20 held-out questions per family, same
greedy text with and without drafts, and the share of drafts accepted.

    OPENBLAS_NUM_THREADS=1 python examples/measure/speculative.py [MODEL]   # default build/student.msgpack
"""
import sys

import numpy as np

import runtime
from runtime.tasks import FAMILIES

model = runtime.load(sys.argv[1] if len(sys.argv) > 1 else "build/student.msgpack")
rng = np.random.default_rng(5)
questions = [fam.sample(rng, "heldout").question for fam in FAMILIES.values() for _ in range(20)]
drafted = accepted = same = 0
for q in questions:
    stats = {}
    plain = "".join(model.generate(q))
    same += plain == "".join(model.generate(q, speculative=True, stats=stats))
    drafted, accepted = drafted + stats["drafted"], accepted + stats["accepted"]
print(f"{len(questions)} held-out questions: identical text {same}/{len(questions)}; "
      f"drafts accepted {accepted:,}/{drafted:,} = {accepted / drafted:.1%}")
