"""`tinyr1` on the host: the runtime's commands plus those of the stages that stay on the host. Each stage
owns its commands: trainer/train_cli.py (train, eval, ask, bench-train), tinyr1/teach_cli.py (teach, which joins
the stages), compiler/compile_cli.py (compile), export/export_cli.py
(export, and bench with --peers, which replaces the runtime's bench here), deploy/flash_cli.py (flash)."""
from compiler.compile_cli import compile_cmd
from deploy.flash_cli import flash
from export.export_cli import bench, export_cmd
from runtime.cli import COMMANDS, group
from tinyr1.teach_cli import teach
from trainer.train_cli import ask, bench_train, eval_cmd, train

HOST = {c.name: c for c in (train, eval_cmd, ask, bench_train, teach, compile_cmd, export_cmd, bench, flash)}

main = group({**COMMANDS, **HOST}, "tinyr1: a tiny DeepSeek-R1-style reasoning model, trained in numpy, for a "
                                   "Raspberry Pi kiosk.")

if __name__ == "__main__":
    main()
