"""Customer CSV imports and background jobs: pure parsing logic, the API against live servers
with real `filestore worker` processes, and exactly-once behaviour under SIGKILL."""
