"""The documents to index: every file of a folder shipped with the application, read once each
time the source starts.

LangStream reads documents from S3, a web crawl or (with ``camel-source``) a folder given as an
absolute path; this example keeps its documents beside its code so that it runs from a fresh
clone with no setting at all. Each file becomes one record: the raw bytes as the value (the
``text-extractor`` recognises Markdown, text and HTML by their content), the file name as the
key and in the ``filename`` header, which the splitter carries to every chunk.

Reading everything again at each start keeps the index in step with the folder: the index
sink replaces a file's chunks, so an edited document is re-indexed on the next ``sluice run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sluice import AgentContext, Record, Source

APPLICATION = Path(__file__).resolve().parent.parent
"""The application's folder (this module lives in its ``python/``)."""


class Documents(Source):
    def init(self, config: dict[str, Any], context: AgentContext) -> None:
        folder = Path(str(config.get("folder", "documents")))
        self.folder = folder if folder.is_absolute() else APPLICATION / folder
        suffixes = config.get("suffixes", [".md", ".txt", ".html"])
        self.suffixes = {str(suffix).lower() for suffix in suffixes}
        self.pending: list[Path] | None = None

    def start(self) -> None:
        if not self.folder.is_dir():
            raise NotADirectoryError(
                f"the documents folder {self.folder} does not exist "
                "(python-source 'documents', configuration key 'folder')"
            )
        self.pending = sorted(
            path
            for path in self.folder.iterdir()
            if path.is_file() and path.suffix.lower() in self.suffixes
        )
        print(f"indexing {len(self.pending)} documents from {self.folder}", flush=True)

    def read(self) -> list[Record]:
        if not self.pending:
            return []  # all read: the runtime polls again later, with a backoff
        records = [
            Record(path.read_bytes(), key=path.name, headers={"filename": path.name})
            for path in self.pending
        ]
        self.pending = []
        return records
