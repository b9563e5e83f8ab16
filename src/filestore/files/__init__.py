"""Files: streaming upload, download with ranges, listing and deletion."""
