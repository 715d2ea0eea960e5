"""Streams a raw PCM file to tyst with the python3 websockets library, as an
independent implementation of the client side (DESIGN §8).

usage: stream_client.py URL TOKEN PCMFILE RATE CHANNELS
Prints the stored message as JSON and exits 0, or prints the error and
exits 1.
"""
import asyncio
import json
import sys

import websockets


async def main(url, token, path, rate, channels):
    with open(path, "rb") as f:
        pcm = f.read()
    async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + token},
                                  max_size=2**16) as ws:
        await ws.send(json.dumps({"type": "start", "format": "pcm_s16le", "sample_rate": rate,
                                  "channels": channels, "source": "python"}))
        ready = json.loads(await ws.recv())
        if ready.get("type") != "ready":
            print(json.dumps(ready))
            return 1
        frame = rate * channels * 2 // 50  # 20 ms
        for i in range(0, len(pcm), frame):
            await ws.send(pcm[i:i + frame])
        await ws.send(json.dumps({"type": "stop"}))
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "ack":
                continue
            print(json.dumps(msg))
            try:
                await ws.recv()
            except websockets.ConnectionClosed as e:
                if msg["type"] == "stored" and e.code != 1000:
                    print("close code", e.code)
                    return 1
            return 0 if msg["type"] == "stored" else 1


if __name__ == "__main__":
    url, token, path, rate, channels = sys.argv[1:6]
    sys.exit(asyncio.run(main(url, token, path, int(rate), int(channels))))
