"""T3's baseline: a bare aiokafka consume -> produce loop, committing per batch.

The floor any worker pays: no decoding, no agent, no CloudEvent mapping; the same consumer group
semantics (manual commits after the batch's writes are acknowledged).
"""

from __future__ import annotations

import argparse
import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition


async def loop(bootstrap: str, source: str, target: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await consumer.start()
    await producer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if not batches:
                continue
            futures = []
            offsets: dict[TopicPartition, int] = {}
            for tp, messages in batches.items():
                for message in messages:
                    futures.append(
                        await producer.send(
                            target,
                            value=message.value,
                            key=message.key,
                            headers=list(message.headers),
                        )
                    )
                offsets[tp] = messages[-1].offset + 1
            await asyncio.gather(*futures)
            await consumer.commit(offsets)
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    args = parser.parse_args()
    asyncio.run(loop(args.bootstrap_servers, args.input, args.output, args.group))


if __name__ == "__main__":
    main()
