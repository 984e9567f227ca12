"""The Exclamation processor: the value with "!!" added, the headers kept (the service
gateway's request id must travel to the reply)."""

from langstream import Processor, SimpleRecord


class Exclamation(Processor):
    def process(self, record):
        return [SimpleRecord(f"{record.value()}!!", headers=record.headers())]
