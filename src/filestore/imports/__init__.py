"""Customer CSV import: streaming, batched, resumable from a checkpoint after a crash."""
