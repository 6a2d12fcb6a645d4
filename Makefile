# Two commands on a fresh Linux machine:  make demo  and  make test.
# Each creates or updates .venv and installs what it needs (stamp files skip the pip step when
# setup.py has not changed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export OPENBLAS_NUM_THREADS ?= 1
export PYTHONHASHSEED := 0

.PHONY: demo test clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.demo: setup.py | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[train]'
	touch $@

$(VENV)/.test: setup.py | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[train,dev,oracle]'
	touch $@

demo: $(VENV)/.demo
	$(VENV)/bin/tinyr1 ask --checkpoint trainer/checkpoints/student \
	  "What is 47+38?" "How many r in strawberry?" "Solve 3x+5=20" \
	  "A train travels 300 km in 5 hours. What is its average speed?" \
	  "Solve x^2-5x+6=0" "What is fib(10)?" "Sort 5 3 9 1"

test: $(VENV)/.test
	$(PY) -m pytest -n 2 -q tests

clean:
	rm -rf $(VENV) .pytest_cache
