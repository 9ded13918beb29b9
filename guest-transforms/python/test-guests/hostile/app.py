"""A hostile Python transform, for the sandbox tests: on events whose
event_name is `when` it misbehaves as `mode` says; every other event is
kept. Config: {"mode": "loop" | "grow" | "raise" | "escape", "when": "poison"}.

- loop: never returns (the time budget cuts it);
- grow: allocates until the memory cap stops it;
- raise: a ZeroDivisionError (a bug): the call fails, and the host
  restarts the plugin, retries the batch without that event and names the
  exception in its dead letter;
- escape: the same with a BaseException, which no `except Exception`
  catches."""

import json

from runnel_sdk.transform import Transform, export


class Escape(BaseException):
    pass


class Hostile(Transform):
    def __init__(self, config):
        options = json.loads(config)
        self.mode, self.when = options["mode"], options["when"]

    def fields(self):
        return ["event_name"]

    def transform(self, event, out):
        if event.str("event_name") == self.when:
            if self.mode == "loop":
                while True:
                    pass
            elif self.mode == "grow":
                hog = []
                while True:
                    hog.append(bytearray(1 << 20))
            elif self.mode == "raise":
                return 1 / 0
            elif self.mode == "escape":
                raise Escape("hostile: escaping on poison")
        out.keep()


Transformer = export(Hostile)
