-- MariaDB compresses the pages of the tables holding objects as it writes them to disk (zlib
-- level 1; the freed part of each page is punched out of the file): stored JSON takes about a
-- quarter of its size, as TOAST compression gives PostgreSQL. Pages in the buffer pool stay
-- uncompressed, so reads from memory cost the same; compression runs in the background page
-- flush. The label index and the change log stay uncompressed: their small rows save little and
-- their pages are rewritten often. `/*M!` runs on MariaDB only: MySQL 8 leaves the tables as they
-- are (its own `COMPRESSION` attribute is an operator's choice, see docs/storage.md).
ALTER TABLE resources /*M!100100 PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1 */;
ALTER TABLE events /*M!100100 PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1 */;
