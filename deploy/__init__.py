"""Host-side deployment: release bundles (`bundle.py`), directory and ssh targets (`targets.py`) running one
set of locked, verified sh scripts (`scripts.py`), `tinyr1 flash` for one target or an Ansible fleet
(`flash.py`), and `make pi-check`'s arm64 userland check (`pi_check.py`)."""
