"""Host-side deployment: release bundles (`bundle.py`), targets and their sh scripts (`targets.py`), and
`tinyr1 flash` for one target or an Ansible fleet (`flash.py`)."""
