"""Questions no family covers, and the refusal the model gives them.

`OUT_OF_SCOPE.sample(rng, split)` draws greetings, general knowledge, other maths, near misses of the
families (division, powers, vowels, words to sort, functions other than fib, "how many" questions that are
not letter counts) and gibberish. Its split is by hash of the question, and
some kinds are never trained on at all (`HELDOUT_KINDS`), so `tinyr1 eval` measures refusals of questions
that training never saw.
"""
import hashlib
import string

from runtime.errors import TaskError

REFUSAL = "Sorry, I can't answer that. I know sums, letter counts, equations, speed, Fibonacci and sorting."
REFUSAL_THINKING = "not a question I know"
HELDOUT_EVERY = 4

PLACES = ("France", "Japan", "Peru", "Kenya", "Norway", "Chile", "Egypt", "India", "Canada", "Brazil", "Spain",
          "Italy", "Ghana", "Nepal", "Mexico", "Poland", "Oregon", "Texas", "Ohio", "Maine", "Utah", "Iowa",
          "Vermont", "Nevada", "Florida", "Alaska", "Wales", "Scotland", "Ireland", "Greece", "Turkey", "Cuba")
THINGS = ("telephone", "light bulb", "printing press", "radio", "airplane", "computer", "bicycle", "camera",
          "piano", "television", "internet", "steam engine", "compass", "clock", "battery", "microscope")
NOUNS = ("a volcano", "a galaxy", "a cloud", "an atom", "a poem", "gravity", "photosynthesis", "a neuron",
         "democracy", "a rainbow", "a comet", "music", "a glacier", "an island", "a bridge", "a virus", "love",
         "a desert", "a planet", "a tornado", "a noun", "a verb", "a python", "a database", "a robot",
         "time", "energy", "a black hole", "an ocean", "a fossil", "art", "a molecule", "electricity", "a cell",
         "history", "a star", "a mountain", "philosophy", "a language", "a dream", "a forest", "a map", "an engine",
         "a magnet", "a planet's orbit", "an earthquake", "a symphony", "a battery", "friendship", "a pyramid",
         "a hurricane", "the moon", "a computer", "an algorithm", "a kiosk", "a tide", "a seed", "sound")
ACRONYMS = ("DNA", "NASA", "HTML", "USB", "GPS", "a CPU", "RAM", "an API", "a GPU", "SQL", "JSON", "Linux",
            "the UN", "a PDF", "Wi-Fi", "AI", "an LED", "the EU", "a URL", "HTTP", "UNESCO", "a VPN", "CO2")
HOW_MANY = ("How many people live in {p}?", "How many days are in a week?", "How many cities are in {p}?",
            "How many legs does a spider have?", "How many hours are in a day?", "How many rivers are in {p}?",
            "What language is spoken in {p}?", "What time is it in {p}?", "What currency is used in {p}?",
            "How many words are in this sentence?", "How many planets are in the solar system?",
            "Who lives in {p}?", "How many months have 31 days?", "How big is {p}?", "How old is {p}?")
FUNCTIONS = ("sin", "cos", "tan", "sqrt", "exp", "ln", "abs", "floor", "round", "f", "g", "max", "cbrt",
             "arcsin", "sinh", "ceil", "prime", "phi", "sigma")
PEOPLE = ("Ada Lovelace", "Alan Turing", "Marie Curie", "Isaac Newton", "Albert Einstein", "Frida Kahlo",
          "Nelson Mandela", "Mozart", "Cleopatra", "Shakespeare", "Darwin", "Galileo", "Grace Hopper")
COLOURS_OF = ("the sky", "grass", "the sun", "snow", "a banana", "the sea", "a tomato", "coal", "a flamingo")
GREETINGS = ("Hello", "Hi", "Hi there!", "Hey", "Good morning", "Good evening", "How are you?", "Who are you?",
             "What is your name?", "Thanks!", "Thank you", "Bye", "hello?", "Are you a robot?", "Can you help me?",
             "What can you do?", "Tell me a joke", "I am bored", "Yo", "Nice to meet you", "What time is it?",
             "Do you like pizza?", "Sing a song", "Tell me a story", "What day is it today?", "Good night",
             "Are you alive?", "Where are you?", "Help", "What is the weather like?", "hi!!", "Howdy")
WORDS = ("apple", "river", "planet", "garden", "pencil", "rocket", "winter", "castle", "dragon", "guitar",
         "orange", "forest", "window", "silver", "tiger", "museum", "puzzle", "candle")

# kind -> template(rng) -> question; numbers and words drawn per question
KINDS = {
    "greeting": lambda r: _pick(r, GREETINGS),
    "capital": lambda r: f"What is the capital of {_pick(r, PLACES)}?",
    "invented": lambda r: f"Who invented the {_pick(r, THINGS)}?",
    "define": lambda r: f"What is {_pick(r, NOUNS)}?",
    "acronym": lambda r: f"What is {_pick(r, ACRONYMS)}?",                 # not the FAQ's "What is MoE?"
    "how-many": lambda r: _pick(r, HOW_MANY).format(p=_pick(r, PLACES)),     # "how many" and "in": not a count
    "function": lambda r: f"What is {_pick(r, FUNCTIONS)}({_n(r, 999)})?",   # not fib(n)
    "person": lambda r: f"Who was {_pick(r, PEOPLE)}?",
    "colour": lambda r: f"What colour is {_pick(r, COLOURS_OF)}?",
    "divide": lambda r: f"What is {_n(r, 999)}/{_n(r, 99, 1)}?",
    "divided": lambda r: f"What is {_n(r, 999)} divided by {_n(r, 99, 1)}?",
    "root": lambda r: f"What is the square root of {_n(r, 999)}?",
    "power": lambda r: f"What is {_n(r, 20)}^{_n(r, 9)}?",
    "percent": lambda r: f"What is {_n(r, 99)}% of {_n(r, 999)}?",
    "prime": lambda r: f"Is {_n(r, 999)} a prime number?",
    "decimal": lambda r: f"What is {_n(r, 99)}.{_n(r, 9)}+{_n(r, 99)}.{_n(r, 9)}?",
    "cubic": lambda r: f"Solve x^3-{_n(r, 999, 1)}=0",
    "leading": lambda r: f"Solve {_n(r, 9, 2)}x^2+{_n(r, 9, 1)}x-{_n(r, 99, 1)}=0",
    "vowels": lambda r: f"How many vowels in {_pick(r, WORDS)}?",
    "sort-words": lambda r: f"Sort {' '.join(r.choice(WORDS, 3))}",
    "reverse": lambda r: f"Spell {_pick(r, WORDS)} backwards",
    "factorial": lambda r: f"What is {_n(r, 20)}!?",
    "mod": lambda r: f"What is {_n(r, 999)} mod {_n(r, 20, 2)}?",
    "compare": lambda r: f"Which is bigger, {_n(r, 999)} or {_n(r, 999)}?",
    "gibberish": lambda r: _gibberish(r),
    "mash": lambda r: "".join(r.choice(list("asdfghjklqwertyuiopzxcvbnm;'.,"), int(r.integers(3, 20)))),
    # never trained: the refusal must carry to kinds of question the model has not seen
    "translate": lambda r: f"Translate {_pick(r, WORDS)} into French",
    "distance": lambda r: f"How far is {_pick(r, PLACES)} from {_pick(r, PLACES)}?",
    "log": lambda r: f"What is log({_n(r, 999, 1)})?",
    "weather": lambda r: f"Will it rain in {_pick(r, PLACES)} tomorrow?",
    "born": lambda r: f"When was {_pick(r, PEOPLE)} born?",
}
HELDOUT_KINDS = ("translate", "distance", "log", "weather", "born")


def _pick(rng, items):
    return str(items[int(rng.integers(len(items)))])


def _n(rng, hi, lo=0):
    return int(rng.integers(lo, hi + 1))


def _gibberish(rng):
    words = ["".join(rng.choice(list(string.ascii_lowercase), int(rng.integers(2, 8)))) for _ in range(rng.integers(1, 5))]
    return " ".join(words).capitalize() + str(rng.choice(["", "?", "!", "."]))


def split_of(question):
    h = int(hashlib.sha256(("scope:" + question).encode("utf-8")).hexdigest(), 16)
    return "heldout" if h % HELDOUT_EVERY == 0 else "train"


def is_refusal(answer):
    return answer is not None and answer.strip() == REFUSAL


class OutOfScope:
    """The generator of questions to refuse; `in_scope(question)` (set by runtime.tasks) keeps a drawn
    question that some family does accept out of both splits."""
    name = "refuse"

    def __init__(self, in_scope):
        self.in_scope = in_scope

    def sample(self, rng, split):
        if split not in ("train", "heldout", "sft", "rl"):
            raise TaskError(f"refuse: unknown split {split!r}; use train or heldout")
        want = "heldout" if split == "heldout" else "train"
        kinds = list(KINDS) if want == "heldout" else [k for k in KINDS if k not in HELDOUT_KINDS]
        for _ in range(10000):
            kind = kinds[int(rng.integers(len(kinds)))]
            q = KINDS[kind](rng)
            fresh = kind in HELDOUT_KINDS or split_of(q) == want
            if not self.in_scope(q) and (fresh if want == "heldout" else split_of(q) == "train"):
                return q
        raise TaskError(f"refuse: no {split} question found in 10000 draws")
