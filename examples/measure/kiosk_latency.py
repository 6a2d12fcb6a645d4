"""README "Kiosk numbers": press-to-first-character latency in simulation, every button of each shipped
config pressed 5 times, with the real kiosk code, gpiozero's MockFactory and the image display.

    tinyr1 compile trainer/checkpoints/student -o build/student.msgpack
    OPENBLAS_NUM_THREADS=1 python examples/measure/kiosk_latency.py [MODEL]
"""
import io
import statistics
import sys

from runtime.kiosk.config import load_config
from runtime.kiosk.simulate import Press, simulate
from runtime.model import load

path = sys.argv[1] if len(sys.argv) > 1 else "build/student.msgpack"
model = load(path)
for name in ("pi5-ssd1306", "pi4-sh1106", "pizero2w-lcd1602"):
    cfg = load_config(f"firmware_configs/{name}.yaml", model_override=path)
    kiosk, rec = simulate(cfg, model, [Press(b.pin) for _ in range(5) for b in cfg.buttons], out=io.StringIO())
    ms = [t["first_char_seconds"] * 1000 for t in kiosk.transcript if t["first_char_seconds"] is not None]
    right = sum(t["verified"] is True for t in kiosk.transcript)
    tps = statistics.median(t["tokens_per_second"] for t in kiosk.transcript)
    print(f"{name}: {len(ms)} presses, press-to-first-character median {statistics.median(ms):.1f} ms, "
          f"max {max(ms):.1f} ms; {right}/{len(kiosk.transcript)} verified right; median {tps:,.0f} tokens/s; "
          f"{len(rec.frames)} frames")
