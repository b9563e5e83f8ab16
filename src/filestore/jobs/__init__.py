"""Background jobs: our `background_jobs` table (the truth) and the procrastinate queue."""
