"""The analytics database: load schemas, partitions, the publish, the result view, the export."""
