"""Chain-of-thought writers: short, mechanical steps a 1M-parameter character model can learn.

Every writer takes the family's parsed parameters and returns the text between <think> and </think>.
Numbers are processed right to left, one digit per step, the way the model has to compute them.
"""
from runtime.tasks import FAMILIES, family_of
from runtime.tasks.algebra import fib
from runtime.errors import TaskError


def digits_rtl(n, width):
    s = str(n).rjust(width, "0")
    return [int(c) for c in reversed(s)]


def cot_add(p):
    # 47+38 -> "7+8=15 4+3+1=8": each step da+db[+carry]=sum; the answer is read from the steps
    a, b = p
    w = max(len(str(a)), len(str(b)))
    steps, carry = [], 0
    for da, db in zip(digits_rtl(a, w), digits_rtl(b, w)):
        s = da + db + carry
        steps.append(f"{da}+{db}{'+1' if carry else ''}={s}")
        carry = s // 10
    return " ".join(steps)


def cot_sub(p):
    # 82-47 -> "12-7=5 7-4=3": the top digit, less any borrow, plus 10 when it must borrow
    a, b = p
    w = len(str(a))
    steps, borrow = [], 0
    for da, db in zip(digits_rtl(a, w), digits_rtl(b, w)):
        x = da - borrow
        borrow = 1 if x < db else 0
        x += 10 * borrow
        steps.append(f"{x}-{db}={x - db}")
    return " ".join(steps)


def cot_mul(p):
    # 23*7 -> "3*7=21 2*7=14+2=16"
    a, b = p
    steps, carry = [], 0
    for d in digits_rtl(a, len(str(a))):
        prod = d * b
        steps.append(f"{d}*{b}={prod}" + (f"+{carry}={prod + carry}" if carry else ""))
        carry = (prod + carry) // 10
    return " ".join(steps)


def cot_count(p):
    # r in strawberry -> "s t r1 a w b e r2 r3 y": the running count appears at each match
    letter, word = p
    out, n = [], 0
    for c in word:
        if c == letter:
            n += 1
            out.append(f"{c}{n}")
        else:
            out.append(c)
    return " ".join(out)


def cot_linear(p):
    # 3x+5=20 -> "3x=20-5=15 x=15/3=5";  4x-3=9 -> "4x=9+3=12 x=12/4=3"
    a, b, c = p
    rhs = c - b
    move = f"{c}-{b}" if b > 0 else f"{c}+{-b}"
    return f"{a}x={move}={rhs} x={rhs}/{a}={rhs // a}"


def cot_speed(p):
    # 300 km in 5 h -> "300/5 30/5=6r0 0/5=0r0": long division, one quotient digit per step
    d, t = p
    digits = str(d)
    n, i = int(digits[0]), 1
    if n < t and len(digits) > 1:
        n, i = int(digits[:2]), 2
    steps = [f"{d}/{t}"]
    while True:
        q, r = divmod(n, t)
        steps.append(f"{n}/{t}={q}r{r}")
        if i >= len(digits):
            return " ".join(steps)
        n, i = r * 10 + int(digits[i]), i + 1


def cot_quadratic(p):
    # roots 2, 3 -> "a+b=5 ab=6 1*4=4!=6 2*3=6=6": try a = 1, 2, ... with b = s - a; each product is
    # written next to ab, so deciding to stop compares two adjacent numbers, not a distant one
    r1, r2 = p
    s, prod = r1 + r2, r1 * r2
    steps = [f"a+b={s}", f"ab={prod}"]
    for a in range(1, s // 2 + 1):
        ab = a * (s - a)
        steps.append(f"{a}*{s - a}={ab}{'=' if ab == prod else '!='}{prod}")
        if ab == prod:
            break
    return " ".join(steps)


def cot_fib(n):
    # fib(4) -> "0,4 1,3 1,2 2,1 3,0": fib(0), fib(1), ... each beside a countdown from n. A value depends
    # only on the two before it, the same for every n, and the trace always stops right after ",0", so
    # a held-out n needs neither a value nor a stopping point it has not seen.
    return " ".join(f"{fib(i)},{n - i}" for i in range(n + 1))


def cot_sort(p):
    # 5 3 9 1 -> "1 of 5 3 9 1;3 of 5 3 9;5 of 5 9;9 of 9": take the smallest of what is left
    left, steps = list(p), []
    while left:
        m = min(left)
        steps.append(f"{m} of {' '.join(map(str, left))}")
        left.remove(m)
    return ";".join(steps)


WRITERS = {"add": cot_add, "sub": cot_sub, "mul": cot_mul, "count": cot_count, "linear": cot_linear,
           "speed": cot_speed, "quadratic": cot_quadratic, "fib": cot_fib, "sort": cot_sort,
           "faq": lambda p: "recall"}


def reasoning(question, family=None):
    """The chain of thought for a question of a known family."""
    fam = FAMILIES[family] if family else family_of(question)
    if fam is None:
        raise TaskError(f"no task family parses {question!r}; families: {', '.join(FAMILIES)}")
    params = fam.parse(question)
    if params is None:
        raise TaskError(f"{fam.name}: cannot parse the question {question!r}")
    return WRITERS[fam.name](params)


def target_text(thinking, answer):
    return f"<think>{thinking}</think><answer>{answer}</answer>"


def target(question, family=None):
    fam = FAMILIES[family] if family else family_of(question)
    return target_text(reasoning(question, fam.name), fam.solve(question))
