"""Bytes the sim keeps: result videos ("files"), DashScope OSS uploads ("oss"), WaveSpeed uploads
("media"). In memory, or result videos in a directory when `storage` is a path."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Blob:
    name: str
    content_type: str
    created_wall: float
    created_sim: float
    ttl_s: float
    size: int
    data: bytes | None = None
    path: str | None = None

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return Path(self.path).read_bytes()

    def expired(self, sim_now: float) -> bool:
        return sim_now - self.created_sim > self.ttl_s


class BlobStore:
    def __init__(self, storage: str = "memory"):
        self._dir: Path | None = None
        if storage and storage != "memory":
            self._dir = Path(storage)
            self._dir.mkdir(parents=True, exist_ok=True)
        self._blobs: dict[tuple[str, str], Blob] = {}
        self._lock = threading.Lock()

    def put(
        self,
        space: str,
        name: str,
        data: bytes,
        content_type: str,
        created_wall: float,
        created_sim: float,
        ttl_s: float,
    ) -> Blob:
        blob = Blob(name, content_type, created_wall, created_sim, ttl_s, len(data))
        if self._dir is not None and space == "files":
            path = self._dir / name.replace("/", "_")
            path.write_bytes(data)
            blob.path = os.fspath(path)
        else:
            blob.data = data
        with self._lock:
            self._blobs[(space, name)] = blob
        return blob

    def get(self, space: str, name: str) -> Blob | None:
        with self._lock:
            return self._blobs.get((space, name))

    def __len__(self) -> int:
        return len(self._blobs)
