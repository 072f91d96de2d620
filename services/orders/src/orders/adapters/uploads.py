"""Uploaded CSV files, kept on the service's own storage under one directory per order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import UUID


class UploadStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, order_id: UUID, source_id: UUID) -> Path:
        return self.root / str(order_id) / f"{source_id}.csv"

    def location(self, order_id: UUID, source_id: UUID) -> str:
        return self._path(order_id, source_id).as_uri()

    async def save(self, order_id: UUID, source_id: UUID, content: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(order_id, source_id), content)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
