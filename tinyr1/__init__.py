"""The host's `tinyr1`: every stage of the pipeline as one command (train -> compile -> export/bench ->
flash -> run/kiosk). A Raspberry Pi release ships runtime/ alone, whose runtime/cli.py knows only its own
commands."""
