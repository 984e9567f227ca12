"""Counts the questions it has seen, in a file of its persistent state directory."""

import os

from langstream import AgentContext, Processor, SimpleRecord


class Counter(Processor):
    def init(self, config, context: AgentContext):
        self.context = context

    def process(self, record):
        directory = self.context.get_persistent_state_directory()
        counter_file = os.path.join(directory, "counter.txt")
        count = 0
        if os.path.exists(counter_file):
            with open(counter_file) as f:
                count = int(f.read().strip() or 0)
        count += 1
        with open(counter_file, "w") as f:
            f.write(str(count))
        return [SimpleRecord(f"{record.value()} (question #{count})", headers=record.headers())]
