-- MariaDB compresses the pages of these tables as it writes them to disk (zlib, the freed part of
-- each page punched out of the file): stored JSON takes about a quarter of its size, as TOAST
-- compression gives PostgreSQL. Pages in the buffer pool stay uncompressed, so reads from memory
-- cost the same; compression runs in the background page flush. `/*M!` runs on MariaDB only:
-- MySQL 8 leaves these tables as they are (its own `COMPRESSION` attribute is an operator's
-- choice, see docs/storage.md).
ALTER TABLE resources /*M!100100 PAGE_COMPRESSED=1 */;
ALTER TABLE resource_labels /*M!100100 PAGE_COMPRESSED=1 */;
ALTER TABLE changes /*M!100100 PAGE_COMPRESSED=1 */;
ALTER TABLE events /*M!100100 PAGE_COMPRESSED=1 */;
