"""Object storage: buckets, streaming puts and gets, server-side moves."""
